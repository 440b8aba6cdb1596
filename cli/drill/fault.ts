/**
 * `converge drill --fail <step>`: a rehearsal of a failed rotation. The drill wraps the rotation
 * function it registers with the local Secrets Manager model; the wrapper throws
 * {@link DrillInjectedFault} at one step of the first rotation, every time that step runs, and
 * passes everything else to the real handler. Nothing in lambda/ knows about it.
 *
 * This module has no dependencies, so the CLI can validate `--fail` without loading the drill.
 */
import type { RotationFunction } from '../local/secrets-manager-model';

/** The four steps Secrets Manager invokes, in order; the values `--fail` accepts. */
export const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

/** One of {@link ROTATION_STEPS}. */
export type RotationStep = (typeof ROTATION_STEPS)[number];

/**
 * The error the drill's fault injection throws. Its name is what the drill's table, summary and
 * JSON show for the rotation (`DrillInjectedFault: ...`), so a rehearsed failure cannot be
 * mistaken for a real one.
 *
 * @example
 * if (err instanceof DrillInjectedFault) console.log(`rehearsed failure at ${err.step}`);
 */
export class DrillInjectedFault extends Error {
  public override readonly name = 'DrillInjectedFault';

  public constructor(
    public readonly step: RotationStep,
    public readonly versionId: string,
  ) {
    super(
      `${step} of rotation version ${versionId} failed on purpose (converge drill --fail ${step})`,
    );
  }
}

/**
 * Wraps a rotation function so that `step` of the first rotation it sees (the first
 * ClientRequestToken) throws {@link DrillInjectedFault} instead of running, on every attempt.
 * Other steps of that rotation, and every later rotation, run `fn` unchanged.
 *
 * @example
 * model.registerRotationFunction(lambdaArn, withInjectedFault((e) => handler(e), 'setSecret'));
 */
export function withInjectedFault(fn: RotationFunction, step: RotationStep): RotationFunction {
  let firstToken: string | undefined;
  return async (event) => {
    firstToken ??= event.ClientRequestToken;
    if (event.ClientRequestToken === firstToken && event.Step === step) {
      throw new DrillInjectedFault(step, event.ClientRequestToken);
    }
    return fn(event);
  };
}
