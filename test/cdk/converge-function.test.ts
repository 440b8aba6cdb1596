/**
 * Where ConvergeFunction takes its code from: the prebuilt bundle when its directory holds one (the
 * installed @converge/cdk package), the TypeScript entry bundled at synth otherwise (this
 * repository), and a ConfigurationError naming both paths when neither exists.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ConfigurationError } from '../../lambda/shared/errors';
import { ConvergeFunction, ROTATION_ENTRY } from '../../lib';
import { newStack } from './fixtures';

describe('ConvergeFunction: prebuilt bundle or source', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'converge-prebuilt-'));
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a directory holding index.js is the code asset, with the handler in it; nothing is bundled', () => {
    // GIVEN
    writeFileSync(join(dir, 'index.js'), 'exports.handler = async () => "prebuilt";\n');
    const stack = newStack();

    // WHEN
    const fn = new ConvergeFunction(stack, 'Fn', { entry: ROTATION_ENTRY, prebuilt: dir });

    // THEN
    expect(fn.function).not.toBeInstanceOf(NodejsFunction);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
    });
  });

  test('an empty or missing prebuilt directory falls back to bundling the entry', () => {
    // GIVEN
    const stack = newStack();

    // WHEN
    const empty = new ConvergeFunction(stack, 'Empty', { entry: ROTATION_ENTRY, prebuilt: dir });
    const missing = new ConvergeFunction(stack, 'Missing', {
      entry: ROTATION_ENTRY,
      prebuilt: join(dir, 'absent'),
    });

    // THEN
    expect(empty.function).toBeInstanceOf(NodejsFunction);
    expect(missing.function).toBeInstanceOf(NodejsFunction);
  });

  test('neither a prebuilt bundle nor the source entry: a ConfigurationError naming both paths', () => {
    // GIVEN
    const entry = join(dir, 'lambda', 'rotation', 'index.ts');
    const prebuilt = join(dir, 'assets', 'rotation');

    // WHEN
    const build = () => new ConvergeFunction(newStack(), 'Fn', { entry, prebuilt });

    // THEN
    expect(build).toThrow(ConfigurationError);
    expect(build).toThrow(
      `Test/Fn: the function's prebuilt bundle is missing (${join(prebuilt, 'index.js')}) and its source entry ${entry} does not exist; reinstall the package that provides this construct`,
    );
  });
});
