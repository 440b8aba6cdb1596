/**
 * The master credential (from `masterarn`) and where to use it. An RDS-managed master secret holds
 * only username and password; its host is completed from the secret's RDS tags with
 * @aws-sdk/client-rds. The master is only ever used against the rotated secret's own database.
 */
import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { DescribeSecretCommand, ResourceNotFoundException } from '@aws-sdk/client-secrets-manager';
import { ConfusedDeputyError, ConvergeError, MasterSecretError } from '../shared/errors';
import type { ConnectionTarget } from '../shared/pg-connection';
import { parseMasterSecret, type DbSecret, type MasterSecret, type SslMode } from '../shared/secret';
import { awsCall, getSecretString } from './aws-call';
import type { StepContext } from './context';

/** Tags RDS puts on the master secrets it manages. */
const RDS_INSTANCE_TAG = 'aws:rds:primaryDBInstanceArn';
const RDS_CLUSTER_TAG = 'aws:rds:primaryDBClusterArn';

const SSL_STRENGTH: Record<SslMode, number> = { disable: 0, require: 1, 'verify-ca': 2, 'verify-full': 3 };

export interface MasterConnection {
  readonly credential: MasterSecret;
  readonly target: ConnectionTarget;
}

/**
 * Reads the master secret and returns the credential with the connection target (the current
 * secret's host, port and database; the stricter of the two TLS modes).
 *
 * @throws {@link MasterSecretError} when the secret is missing, unreadable or incomplete
 * @throws {@link ConfusedDeputyError} when the master's database is not the rotated secret's
 */
export async function loadMaster(ctx: Pick<StepContext, 'secretsManager' | 'rds'>, current: DbSecret): Promise<MasterConnection> {
  let text: string | undefined;
  try {
    text = await getSecretString(ctx.secretsManager, { SecretId: current.masterarn });
  } catch (err) {
    throw new MasterSecretError(`master secret ${current.masterarn} cannot be read`, { cause: err });
  }
  if (text === undefined) throw new MasterSecretError(`master secret ${current.masterarn} was not found or has no value`);
  let credential: MasterSecret;
  try {
    credential = parseMasterSecret(text, `master secret ${current.masterarn}`);
  } catch (err) {
    throw new MasterSecretError((err as Error).message);
  }
  const masterHost = credential.host ?? (await hostFromRdsTags(ctx, current.masterarn));
  if (masterHost && masterHost !== current.host) {
    throw new ConfusedDeputyError(
      `master secret ${current.masterarn} is for host "${masterHost}", not the rotated secret's host "${current.host}"`,
    );
  }
  const ssl = credential.ssl && SSL_STRENGTH[credential.ssl] > SSL_STRENGTH[current.ssl] ? credential.ssl : current.ssl;
  return { credential, target: { host: current.host, port: current.port, dbname: current.dbname, ssl } };
}

async function hostFromRdsTags(ctx: Pick<StepContext, 'secretsManager' | 'rds'>, masterArn: string): Promise<string | undefined> {
  let tags;
  try {
    tags = (await ctx.secretsManager.send(new DescribeSecretCommand({ SecretId: masterArn }))).Tags ?? [];
  } catch (err) {
    if (err instanceof ResourceNotFoundException) throw new MasterSecretError(`master secret ${masterArn} was not found`);
    throw new MasterSecretError(`master secret ${masterArn} cannot be described`, { cause: err });
  }
  const instance = tags.find((t) => t.Key === RDS_INSTANCE_TAG)?.Value;
  const cluster = tags.find((t) => t.Key === RDS_CLUSTER_TAG)?.Value;
  if (!instance && !cluster) return undefined;
  return (await resolveRdsEndpoint(ctx.rds, { instance, cluster })).host;
}

/**
 * The endpoint of an RDS instance or Aurora cluster (identifier or ARN).
 *
 * @example
 * const { host, port } = await resolveRdsEndpoint(rds, { cluster: 'orders' });
 */
export async function resolveRdsEndpoint(
  rds: RDSClient,
  id: { instance?: string; cluster?: string },
): Promise<{ host: string; port?: number }> {
  try {
    if (id.cluster) {
      const out = await awsCall('DescribeDBClusters', () =>
        rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id.cluster })),
      );
      const c = out.DBClusters?.[0];
      if (!c?.Endpoint) throw new MasterSecretError(`RDS cluster ${id.cluster} has no endpoint`);
      return { host: c.Endpoint, port: c.Port };
    }
    const out = await awsCall('DescribeDBInstances', () =>
      rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id.instance })),
    );
    const i = out.DBInstances?.[0];
    if (!i?.Endpoint?.Address) throw new MasterSecretError(`RDS instance ${id.instance} has no endpoint`);
    return { host: i.Endpoint.Address, port: i.Endpoint.Port };
  } catch (err) {
    if (err instanceof ConvergeError && !(err.name === 'AwsCallError')) throw err;
    throw new MasterSecretError(`cannot resolve the RDS endpoint of ${id.cluster ?? id.instance}`, { cause: err });
  }
}
