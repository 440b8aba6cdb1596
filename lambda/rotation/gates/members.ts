/**
 * The other members of the rotated database, for the revocation guard. pg_stat_activity shows only
 * the server the master connection is on (the writer or primary), but a session of the previous
 * user on an Aurora reader or an RDS read replica would break just the same when its password is
 * overwritten. This module finds those members through the RDS API and lists (or, in an emergency,
 * terminates) the user's sessions on each of them, logging in as the master: a reader or replica
 * shares the primary's catalog, so the same credential works there.
 *
 * Which members are found:
 * - `aurora-postgresql`: every reader instance of the cluster (`DBClusterMembers` with
 *   `IsClusterWriter` false). The cluster is the secret's `dbClusterIdentifier`, or the one a
 *   cluster endpoint host names (`<id>.cluster-<hash>.<region>.rds.amazonaws.com`, also
 *   `cluster-ro-`). Without either the check fails closed: converge cannot tell the cluster.
 * - `postgres` on an RDS instance (`dbInstanceIdentifier`, or an instance endpoint host): its read
 *   replicas, and their read replicas in turn (cascading replicas). Cross-region replicas (listed as
 *   ARNs of another region) cannot be reached from the function: the check fails closed naming them.
 *   Aurora read replica clusters of the instance (`ReadReplicaDBClusterIdentifiers`, a migration
 *   path) are not checked either: the check fails closed naming them until the replica cluster is
 *   promoted or deleted.
 * - `postgres` on an RDS Multi-AZ DB cluster (`dbClusterIdentifier`, or a cluster endpoint host): its
 *   two readable standbys, like Aurora readers.
 * - Any other host without identifiers (self-managed PostgreSQL, a local test server, or a DNS
 *   alias of an RDS endpoint): no other members; only the connected server is checked. Set
 *   `dbInstanceIdentifier` or `dbClusterIdentifier` on the secret when the host is an alias.
 * - An RDS host that names neither an instance nor a cluster (an RDS Proxy or a custom cluster
 *   endpoint) without identifiers: fails closed, asking for the identifier.
 *
 * Also fail closed, each with a {@link MemberCheckError} naming the member: a cluster that belongs to
 * an Aurora global database or has read replicas of its own (other regions or clusters this function
 * does not reach), a member without an endpoint (still being created), an RDS call that fails
 * (access denied, throttling), and a member that cannot be connected to or queried.
 *
 * RDS calls: DescribeDBClusters on the cluster and DescribeDBInstances on each member, both by
 * identifier (one record each, so nothing pages). The execution role needs `rds:DescribeDBInstances`
 * on the instances of the account and region (the construct cannot know reader or replica ids).
 */
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  type DBCluster,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { Client } from 'pg';
import { ConvergeError, MemberCheckError, redactedCause } from '../../shared/errors';
import { withClient, type ConnectionOptions, type ConnectionTarget, type Credential } from '../../shared/pg-connection';
import type { DbSecret, Engine } from '../../shared/secret';
import { awsCall } from '../aws-call';
import { listSessions, terminateSessions, type UserSession } from './sessions';

/** `application_name` of the master's connections to members, unless the caller sets one. */
export const MEMBER_APPLICATION_NAME = 'converge-rotation';

/**
 * What a member is: a reader instance of an Aurora cluster, a readable standby of an RDS Multi-AZ DB
 * cluster, or a read replica of an RDS instance (cascading replicas included).
 */
export type MemberKind = 'aurora-reader' | 'cluster-reader' | 'read-replica';

/** A server other than the master connection's whose sessions the revocation guard must see. */
export interface DatabaseMember {
  /** The RDS DB instance identifier. */
  readonly id: string;
  readonly kind: MemberKind;
  /** The member's own endpoint, with the primary's database name and TLS mode. */
  readonly target: ConnectionTarget;
}

/** The sessions of one user found (or terminated) on one member. */
export interface MemberSessions {
  readonly member: DatabaseMember;
  readonly sessions: readonly UserSession[];
}

const KIND_LABEL: Record<MemberKind, string> = {
  'aurora-reader': 'Aurora reader',
  'cluster-reader': 'Multi-AZ DB cluster reader',
  'read-replica': 'read replica',
};

/** `<cluster>.cluster-[ro-]<hash>.<region>.rds.amazonaws.com[.cn]` (not `cluster-custom-`). */
const CLUSTER_ENDPOINT = /^([a-z][a-z0-9-]*)\.cluster-(?:ro-)?[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(?:\.cn)?$/;
/** `<instance>.<hash>.<region>.rds.amazonaws.com[.cn]`: the hash has no hyphen (unlike `proxy-`). */
const INSTANCE_ENDPOINT = /^([a-z][a-z0-9-]*)\.[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(?:\.cn)?$/;
/** Any RDS-managed host name. */
const RDS_HOST = /\.rds\.amazonaws\.com(?:\.cn)?$/;
/** `arn:<partition>:rds:<region>:<account>:<db|cluster>:<id>`. */
const RDS_ARN = /^arn:[a-z-]+:rds:([a-z0-9-]*):\d*:(db|cluster):(.+)$/;

/**
 * Members other than the one the master connection is on, whose sessions must be checked too
 * (see the module documentation for the rules). Nothing is connected to here.
 *
 * @param rds - client of the function's region
 * @param secret - the rotated secret (engine and RDS identifiers)
 * @param primary - where the master connection goes; members inherit its `dbname` and `ssl`
 * @throws {@link MemberCheckError} naming the cluster, instance or replica that cannot be resolved
 *
 * @example
 * const members = await otherMembers(ctx.rds, current, master.target);
 * // [{ id: 'orders-2', kind: 'aurora-reader', target: { host: 'orders-2.abc.eu-west-1.rds.amazonaws.com', ... } }]
 */
export async function otherMembers(
  rds: RDSClient,
  secret: Pick<DbSecret, 'engine' | 'dbInstanceIdentifier' | 'dbClusterIdentifier'>,
  primary: ConnectionTarget,
): Promise<DatabaseMember[]> {
  const host = primary.host.toLowerCase();
  const clusterFromHost = CLUSTER_ENDPOINT.exec(host)?.[1];
  if (secret.engine === 'aurora-postgresql') {
    const clusterId = secret.dbClusterIdentifier ?? clusterFromHost;
    if (!clusterId) {
      throw new MemberCheckError(
        secret.dbInstanceIdentifier ?? primary.host,
        `cannot tell which Aurora cluster "${primary.host}" belongs to, so its readers cannot be checked for sessions: ` +
          'set "dbClusterIdentifier" in the secret (or use the cluster endpoint as host)',
      );
    }
    return clusterReaders(rds, clusterId, primary, secret.engine);
  }
  if (secret.dbClusterIdentifier) return clusterReaders(rds, secret.dbClusterIdentifier, primary, secret.engine);
  const instanceId = secret.dbInstanceIdentifier ?? (clusterFromHost ? undefined : INSTANCE_ENDPOINT.exec(host)?.[1]);
  if (instanceId) return instanceReplicas(rds, instanceId, primary);
  if (clusterFromHost) return clusterReaders(rds, clusterFromHost, primary, secret.engine);
  if (RDS_HOST.test(host)) {
    throw new MemberCheckError(
      primary.host,
      `"${primary.host}" is an RDS endpoint that names neither a DB instance nor a DB cluster (an RDS Proxy or a custom endpoint?), ` +
        'so its read replicas cannot be found: set "dbInstanceIdentifier" or "dbClusterIdentifier" in the secret',
    );
  }
  // Self-managed PostgreSQL (or a name converge cannot map to RDS): only the connected server is checked.
  return [];
}

/**
 * Lists `username`'s sessions on each member, logging in as the master (the same credential: a
 * reader or replica shares the primary's catalog). Members are checked concurrently, each on its own
 * connection that is always closed; the result keeps the order of `members`.
 *
 * @param options - as for the master connection (CA bundle, timeouts, session settings); the
 *   `application_name` defaults to {@link MEMBER_APPLICATION_NAME}
 * @throws {@link MemberCheckError} naming the first member (in order) that cannot be connected to or
 *   queried; the message says why and never carries the password
 *
 * @example
 * const found = await sessionsOnMembers(members, master.credential, connectionOptions(ctx), 'app_clone');
 * const open = found.reduce((n, m) => n + m.sessions.length, 0);
 */
export async function sessionsOnMembers(
  members: readonly DatabaseMember[],
  master: Credential,
  options: ConnectionOptions,
  username: string,
): Promise<MemberSessions[]> {
  return onEachMember(members, master, options, username, 'list sessions of', (c) => listSessions(c, username));
}

/**
 * Emergency only: terminates `username`'s sessions on each member (pg_terminate_backend through
 * {@link terminateSessions}, which waits for each backend to exit and re-checks) and returns the
 * sessions it terminated, per member. Members are handled concurrently; a failure on one does not
 * stop the others, and is thrown afterwards.
 *
 * @throws {@link MemberCheckError} naming the first member (in order) that cannot be connected to, or
 *   where the master may not terminate the sessions or some survive
 *
 * @example
 * const terminated = await terminateOnMembers(members, master.credential, connectionOptions(ctx), 'app_clone');
 * for (const { member, sessions } of terminated) logger.warn('terminated', { member: member.id, pids: sessions.map((s) => s.pid) });
 */
export async function terminateOnMembers(
  members: readonly DatabaseMember[],
  master: Credential,
  options: ConnectionOptions,
  username: string,
): Promise<MemberSessions[]> {
  return onEachMember(members, master, options, username, 'terminate sessions of', (c) => terminateSessions(c, username));
}

async function onEachMember(
  members: readonly DatabaseMember[],
  master: Credential,
  options: ConnectionOptions,
  username: string,
  what: string,
  fn: (client: Client) => Promise<UserSession[]>,
): Promise<MemberSessions[]> {
  const memberOptions: ConnectionOptions = { ...options, applicationName: options.applicationName ?? MEMBER_APPLICATION_NAME };
  const settled = await Promise.allSettled(members.map((member) => withClient(member.target, master, memberOptions, fn)));
  return settled.map((result, i) => {
    const member = members[i];
    if (result.status === 'fulfilled') return { member, sessions: result.value };
    const err = result.reason as unknown;
    // pg-connection and sessions.ts errors are already redacted; anything else is redacted here.
    const cause = err instanceof ConvergeError ? err : redactedCause(err, [master.password]);
    throw new MemberCheckError(
      member.id,
      `${KIND_LABEL[member.kind]} ${member.id} (${member.target.host}:${member.target.port}): cannot ${what} "${username}": ${cause.message}`,
      { cause },
    );
  });
}

/** The readers of a cluster (Aurora or Multi-AZ DB cluster), each with its own endpoint. */
async function clusterReaders(rds: RDSClient, clusterId: string, primary: ConnectionTarget, engine: Engine): Promise<DatabaseMember[]> {
  const cluster = await describeCluster(rds, clusterId);
  const kind: MemberKind = (cluster.Engine ?? engine).startsWith('aurora') ? 'aurora-reader' : 'cluster-reader';
  if (cluster.GlobalClusterIdentifier) {
    throw new MemberCheckError(
      clusterId,
      `cluster ${clusterId} belongs to the global database ${cluster.GlobalClusterIdentifier}: sessions on its clusters in other regions ` +
        'cannot be checked from the rotation function',
    );
  }
  const replicas = cluster.ReadReplicaIdentifiers ?? [];
  if (replicas.length > 0) {
    throw new MemberCheckError(
      replicas[0],
      `cluster ${clusterId} has read replicas (${replicas.join(', ')}) whose sessions converge does not check`,
    );
  }
  const members: DatabaseMember[] = [];
  for (const m of cluster.DBClusterMembers ?? []) {
    if (m.IsClusterWriter) continue;
    if (!m.DBInstanceIdentifier) {
      throw new MemberCheckError(clusterId, `cluster ${clusterId} lists a reader without an instance identifier`);
    }
    const instance = await describeInstance(rds, m.DBInstanceIdentifier, KIND_LABEL[kind]);
    const member = toMember(instance, m.DBInstanceIdentifier, kind, primary, cluster.Port);
    if (!isPrimary(member, primary)) members.push(member);
  }
  return members;
}

/** The read replicas of an instance and theirs in turn, each with its own endpoint. */
async function instanceReplicas(rds: RDSClient, instanceId: string, primary: ConnectionTarget): Promise<DatabaseMember[]> {
  const source = await describeInstance(rds, instanceId, 'DB instance');
  // An instance of a Multi-AZ DB cluster: its peers are cluster members, not read replicas.
  if (source.DBClusterIdentifier) return clusterReaders(rds, source.DBClusterIdentifier, primary, 'postgres');
  const region = await clientRegion(rds);
  const members: DatabaseMember[] = [];
  const seen = new Set([instanceId.toLowerCase()]);
  const queue: DBInstance[] = [source];
  for (let from = queue.shift(); from; from = queue.shift()) {
    const fromId = from.DBInstanceIdentifier ?? instanceId;
    const replicaClusters = from.ReadReplicaDBClusterIdentifiers ?? [];
    if (replicaClusters.length > 0) {
      throw new MemberCheckError(
        replicaClusters[0],
        `DB instance ${fromId} replicates to the Aurora cluster(s) ${replicaClusters.join(', ')}, whose sessions converge does not check ` +
          '(until the replica cluster is promoted or deleted)',
      );
    }
    const refs = (from.ReadReplicaDBInstanceIdentifiers ?? []).map((ref) => ({ ref, id: sameRegionId(ref, region) }));
    const remote = refs.filter((r) => r.id === undefined).map((r) => r.ref);
    if (remote.length > 0) {
      throw new MemberCheckError(
        remote[0],
        `DB instance ${fromId} has read replica(s) in another region (${remote.join(', ')}): the rotation function (region ${region ?? 'unknown'}) ` +
          'cannot reach them to check their sessions',
      );
    }
    for (const { id } of refs) {
      if (!id || seen.has(id.toLowerCase())) continue;
      seen.add(id.toLowerCase());
      const replica = await describeInstance(rds, id, 'read replica');
      members.push(toMember(replica, id, 'read-replica', primary, undefined));
      queue.push(replica);
    }
  }
  return members.filter((m) => !isPrimary(m, primary));
}

async function describeCluster(rds: RDSClient, clusterId: string): Promise<DBCluster> {
  let out;
  try {
    out = await awsCall('DescribeDBClusters', () => rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId })));
  } catch (err) {
    throw new MemberCheckError(
      clusterId,
      `cannot list the members of cluster ${clusterId} to check their sessions: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const cluster = out.DBClusters?.[0];
  if (!cluster) throw new MemberCheckError(clusterId, `cluster ${clusterId} was not found, so its members cannot be checked for sessions`);
  return cluster;
}

async function describeInstance(rds: RDSClient, instanceId: string, label: string): Promise<DBInstance> {
  let out;
  try {
    out = await awsCall('DescribeDBInstances', () => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId })));
  } catch (err) {
    throw new MemberCheckError(
      instanceId,
      `cannot describe ${label} ${instanceId} to check its sessions: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const instance = out.DBInstances?.[0];
  if (!instance) throw new MemberCheckError(instanceId, `${label} ${instanceId} was not found, so its sessions cannot be checked`);
  return instance;
}

function toMember(
  instance: DBInstance,
  id: string,
  kind: MemberKind,
  primary: ConnectionTarget,
  clusterPort: number | undefined,
): DatabaseMember {
  const address = instance.Endpoint?.Address;
  if (!address) {
    const status = instance.DBInstanceStatus ? ` (status "${instance.DBInstanceStatus}")` : '';
    throw new MemberCheckError(
      id,
      `${KIND_LABEL[kind]} ${id} has no endpoint yet${status}, so its sessions cannot be checked: retry the rotation when it is available`,
    );
  }
  return {
    id,
    kind,
    target: { host: address, port: instance.Endpoint?.Port ?? clusterPort ?? primary.port, dbname: primary.dbname, ssl: primary.ssl },
  };
}

/** True when the member is the server the master connection is on (a secret pointing at an instance endpoint). */
function isPrimary(member: DatabaseMember, primary: ConnectionTarget): boolean {
  return member.target.host.toLowerCase() === primary.host.toLowerCase() && member.target.port === primary.port;
}

/** The instance identifier of a replica reference in this region, or undefined for another region's ARN. */
function sameRegionId(ref: string, region: string | undefined): string | undefined {
  const arn = RDS_ARN.exec(ref);
  if (!arn) return ref;
  return arn[2] === 'db' && region !== undefined && arn[1] === region ? arn[3] : undefined;
}

async function clientRegion(rds: RDSClient): Promise<string | undefined> {
  try {
    return await rds.config.region();
  } catch {
    return undefined;
  }
}
