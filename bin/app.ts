#!/usr/bin/env node
/**
 * CDK app: the converge example stack, checked by cdk-nag's AwsSolutions pack. Settings come from
 * CDK context (see lib/stacks/example-stack.ts); `cdk synth` needs no account and no network.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConvergeExampleStack, exampleSettingsFromContext } from '../lib';

const app = new App();
const settings = exampleSettingsFromContext(app.node);
new ConvergeExampleStack(app, 'ConvergeExample', {
  description:
    'converge example: RDS for PostgreSQL with a zero-downtime rotated application user secret',
  env:
    settings.account || settings.region
      ? { account: settings.account, region: settings.region }
      : undefined,
  settings,
  // Your consumers of the rotated secret, each registered once it is deployed and reports its
  // generation (docs/deploy.md, "Register consumers"). None by default, so nothing holds the
  // scheduled rotations; `-c converge:exampleConsumers=true` adds two example ones that never report.
  consumers: [],
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
