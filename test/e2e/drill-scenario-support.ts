/**
 * Runs one drill scenario in process for a test: the shared TLS PostgreSQL of this jest project,
 * the local Secrets Manager, CloudWatch and Lambda models installed behind the real SDK clients.
 */
import { runScenario, type ScenarioReport } from '../../cli/drill/scenario';
import type { ScenarioName } from '../../cli/drill/scenario-names';
import { SCENARIOS } from '../../cli/drill/scenarios';
import { CloudWatchModel } from '../../cli/local/cloudwatch-model';
import { installCloudWatchModel, installSecretsManagerModel } from '../../cli/local/install';
import { installLambdaModel, LambdaModel } from '../../cli/local/lambda-model';
import { SecretsManagerModel } from '../../cli/local/secrets-manager-model';
import { tlsServer } from '../support/database';

/** Runs `name` and returns its report as its JSON reads (what `--json` prints). */
export async function scenarioReport(
  name: Exclude<ScenarioName, 'healthy'>,
): Promise<ScenarioReport> {
  const cloudWatch = new CloudWatchModel();
  const secretsManager = new SecretsManagerModel();
  const lambda = new LambdaModel({ cloudWatch });
  const stubs = [
    installSecretsManagerModel(secretsManager),
    installCloudWatchModel(cloudWatch),
    installLambdaModel(lambda),
  ];
  try {
    const report = await runScenario(SCENARIOS[name], {
      secretsManagerModel: secretsManager,
      lambdaModel: lambda,
      database: tlsServer(),
      refreshSeconds: 1,
    });
    return JSON.parse(JSON.stringify(report)) as ScenarioReport;
  } finally {
    for (const s of stubs) s.restore();
  }
}

/** The captured status's view of one consumer (status contract, cli/commands/status.ts). */
export function consumerInStatus(
  report: ScenarioReport,
  name: string,
  capture = 0,
): Record<string, unknown> | undefined {
  const status = report.statusDuringHold[capture] as unknown as {
    consumers: Record<string, unknown>[];
  };
  return status.consumers.find((c) => c.name === name);
}

/** The captured status's next action (status contract). */
export function nextActionInStatus(
  report: ScenarioReport,
  capture = 0,
): Record<string, unknown> | undefined {
  return (report.statusDuringHold[capture] as unknown as { nextAction?: Record<string, unknown> })
    .nextAction;
}
