/**
 * Reading a synthesized CloudFormation template the way a deployment would fill it in: the
 * resources of a type, and the intrinsic functions CDK writes around names and ARNs (Ref,
 * Fn::Join, Fn::Select, Fn::Split) evaluated with a local value for each referenced resource.
 * Anything else is an error: a test must not guess a value the deployed stack would get differently.
 */
export type Json = Record<string, unknown>;

/**
 * The `[logicalId, Properties]` of every resource of `type`.
 *
 * @example
 * const alarms = resources(Template.fromStack(stack).toJSON(), 'AWS::CloudWatch::Alarm');
 */
export function resources(template: Json, type: string): Array<[string, Json]> {
  return Object.entries(template.Resources as Record<string, Json>)
    .filter(([, r]) => r.Type === type)
    .map(([id, r]) => [id, (r.Properties ?? {}) as Json]);
}

/**
 * The one element of `found`; throws naming `what` otherwise.
 *
 * @example
 * const [fnId] = only(resources(template, 'AWS::Lambda::Function'), 'rotation function');
 */
export function only<T>(found: T[], what: string): T {
  if (found.length !== 1)
    throw new Error(`expected exactly one ${what} in the template, found ${found.length}`);
  return found[0];
}

/**
 * Evaluates one intrinsic function (or a literal) to a string.
 *
 * @example
 * evaluate({ 'Fn::Join': ['', ['arn:', { Ref: 'Fn1' }]] }, { Fn1: 'my-fn' }); // 'arn:my-fn'
 */
export function evaluate(value: unknown, refs: Readonly<Record<string, string>>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  const [fn, arg] = intrinsic(value);
  switch (fn) {
    case 'Ref': {
      const ref = refs[arg as string];
      if (ref === undefined) throw new Error(`no local value for { Ref: ${String(arg)} }`);
      return ref;
    }
    case 'Fn::Join': {
      const [separator, parts] = arg as [string, unknown[]];
      return parts.map((p) => evaluate(p, refs)).join(separator);
    }
    case 'Fn::Select': {
      const [index, list] = arg as [number, unknown];
      const items = evaluateList(list, refs);
      if (index >= items.length)
        throw new Error(`Fn::Select ${index} of a ${items.length}-element list`);
      return items[index];
    }
    default:
      throw new Error(`cannot evaluate ${fn} locally`);
  }
}

/**
 * A copy of `node` with every intrinsic function in it evaluated ({@link evaluate}).
 *
 * @example
 * const alarm = resolveIntrinsics(alarmProperties, { [fnId]: 'converge-rotation' });
 */
export function resolveIntrinsics(node: unknown, refs: Readonly<Record<string, string>>): unknown {
  if (Array.isArray(node)) return node.map((n) => resolveIntrinsics(n, refs));
  if (!node || typeof node !== 'object') return node;
  const keys = Object.keys(node);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::'))) {
    return evaluate(node, refs);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveIntrinsics(v, refs)]));
}

function evaluateList(value: unknown, refs: Readonly<Record<string, string>>): string[] {
  if (Array.isArray(value)) return value.map((v) => evaluate(v, refs));
  const [fn, arg] = intrinsic(value);
  if (fn !== 'Fn::Split') throw new Error(`cannot evaluate ${fn} to a list locally`);
  const [separator, source] = arg as [string, unknown];
  return evaluate(source, refs).split(separator);
}

/**
 * The one `[name, argument]` of an intrinsic function object such as `{ Ref: 'Id' }`.
 *
 * @example
 * const [, logicalId] = intrinsic(schedule.SecretId); // { Ref: 'AppSecretAttachment' }
 */
export function intrinsic(value: unknown): [string, unknown] {
  const entries = value && typeof value === 'object' ? Object.entries(value) : [];
  if (entries.length !== 1) throw new Error(`not an intrinsic function: ${JSON.stringify(value)}`);
  return entries[0];
}
