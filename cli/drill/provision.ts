/**
 * What every drill stands on: a database with its master and application users, and the two
 * secrets (master, and the application's at generation 0) in Secrets Manager.
 */
import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { provisionDatabase, secretFields, type LocalPostgres } from '../local/postgres';

export interface DrillSecret {
  /** The application secret the drill rotates. */
  readonly secretArn: string;
  readonly secretName: string;
}

/**
 * Creates database `drill_<tag>` with users `drill_master_<tag>` and `drill_app_<tag>`, and the
 * secrets `converge-drill/<tag>/master` and `converge-drill/<tag>/app`.
 *
 * @example
 * const { secretArn } = await provisionDrillSecret(pg, new SecretsManagerClient({}), 'ab12cd');
 */
export async function provisionDrillSecret(
  pg: LocalPostgres,
  sm: SecretsManagerClient,
  tag: string,
): Promise<DrillSecret> {
  const db = await provisionDatabase(pg, {
    dbname: `drill_${tag}`,
    master: `drill_master_${tag}`,
    app: `drill_app_${tag}`,
  });
  const master = await sm.send(
    new CreateSecretCommand({
      Name: `converge-drill/${tag}/master`,
      SecretString: JSON.stringify(secretFields(pg, db).master),
    }),
  );
  const app = await sm.send(
    new CreateSecretCommand({
      Name: `converge-drill/${tag}/app`,
      SecretString: JSON.stringify({ ...secretFields(pg, db).app(master.ARN), generation: 0 }),
    }),
  );
  return { secretArn: app.ARN!, secretName: app.Name! };
}
