import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  type DBCluster,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { otherMembers, sessionsOnMembers, terminateOnMembers } from '../../../lambda/rotation/gates/members';
import { MemberCheckError } from '../../../lambda/shared/errors';
import type { ConnectionTarget } from '../../../lambda/shared/pg-connection';
import type { DbSecret } from '../../../lambda/shared/secret';

const REGION = 'eu-west-1';
const HASH = 'abcdefghijkl';
const CLUSTER_HOST = `orders.cluster-${HASH}.${REGION}.rds.amazonaws.com`;
const INSTANCE_HOST = `orders.${HASH}.${REGION}.rds.amazonaws.com`;

type SecretIds = Pick<DbSecret, 'engine' | 'dbInstanceIdentifier' | 'dbClusterIdentifier'>;

function primary(host: string): ConnectionTarget {
  return { host, port: 5432, dbname: 'orders', ssl: 'verify-full' };
}

function endpoint(id: string): string {
  return `${id}.${HASH}.${REGION}.rds.amazonaws.com`;
}

function instance(id: string, extra: Partial<DBInstance> = {}): DBInstance {
  return { DBInstanceIdentifier: id, DBInstanceStatus: 'available', Endpoint: { Address: endpoint(id), Port: 5432 }, ...extra };
}

function awsError(name: string, status: number, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/** The MemberCheckError a promise rejects with (fails the test when it resolves or throws another error). */
async function memberError(p: Promise<unknown>): Promise<MemberCheckError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MemberCheckError);
  return err as MemberCheckError;
}

describe('Function: otherMembers', () => {
  const rdsMock = mockClient(RDSClient);
  const rds = new RDSClient({ region: REGION });

  beforeEach(() => rdsMock.reset());
  afterAll(() => rdsMock.restore());

  function cluster(id: string, members: [string, boolean][], extra: Partial<DBCluster> = {}): void {
    rdsMock.on(DescribeDBClustersCommand, { DBClusterIdentifier: id }).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: id,
          Engine: 'aurora-postgresql',
          Port: 5432,
          DBClusterMembers: members.map(([m, writer]) => ({ DBInstanceIdentifier: m, IsClusterWriter: writer })),
          ...extra,
        },
      ],
    });
  }

  function instances(...list: DBInstance[]): void {
    for (const i of list) {
      rdsMock.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: i.DBInstanceIdentifier }).resolves({ DBInstances: [i] });
    }
  }

  describe('aurora-postgresql', () => {
    const aurora: SecretIds = { engine: 'aurora-postgresql', dbClusterIdentifier: 'orders' };

    it("returns the readers of the secret's cluster with their own endpoints, not the writer", async () => {
      // Prepare
      cluster('orders', [
        ['orders-1', true],
        ['orders-2', false],
        ['orders-3', false],
      ]);
      instances(instance('orders-1'), instance('orders-2'), instance('orders-3', { Endpoint: { Address: endpoint('orders-3'), Port: 5433 } }));
      // Act
      const members = await otherMembers(rds, aurora, primary(CLUSTER_HOST));
      // Assess
      expect(members).toEqual([
        { id: 'orders-2', kind: 'aurora-reader', target: { host: endpoint('orders-2'), port: 5432, dbname: 'orders', ssl: 'verify-full' } },
        { id: 'orders-3', kind: 'aurora-reader', target: { host: endpoint('orders-3'), port: 5433, dbname: 'orders', ssl: 'verify-full' } },
      ]);
      expect(rdsMock).not.toHaveReceivedCommandWith(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'orders-1' });
    });

    it.each([
      ['cluster (writer) endpoint', CLUSTER_HOST],
      ['reader endpoint', `orders.cluster-ro-${HASH}.${REGION}.rds.amazonaws.com`],
      ['cluster endpoint in capitals', CLUSTER_HOST.toUpperCase()],
    ])('finds the cluster from the %s when the secret has no dbClusterIdentifier', async (_name, host) => {
      // Prepare
      cluster('orders', [
        ['orders-1', true],
        ['orders-2', false],
      ]);
      instances(instance('orders-2'));
      // Act
      const members = await otherMembers(rds, { engine: 'aurora-postgresql' }, primary(host));
      // Assess
      expect(members.map((m) => m.id)).toEqual(['orders-2']);
      expect(rdsMock).toHaveReceivedCommandWith(DescribeDBClustersCommand, { DBClusterIdentifier: 'orders' });
    });

    it.each([
      ['an instance endpoint', INSTANCE_HOST],
      ['a custom endpoint (its name is not the cluster id)', `analytics.cluster-custom-${HASH}.${REGION}.rds.amazonaws.com`],
      ['a DNS alias', 'orders-db.internal.example.com'],
    ])('fails closed, asking for dbClusterIdentifier, when the host is %s', async (_name, host) => {
      // Act
      const err = await memberError(otherMembers(rds, { engine: 'aurora-postgresql' }, primary(host)));
      // Assess
      expect(err.member).toBe(host);
      expect(err.message).toMatch(/set "dbClusterIdentifier" in the secret/);
      expect(rdsMock.calls()).toHaveLength(0);
    });

    it('has no other members when the cluster has only a writer', async () => {
      // Prepare
      cluster('orders', [['orders-1', true]]);
      // Act
      const members = await otherMembers(rds, aurora, primary(CLUSTER_HOST));
      // Assess
      expect(members).toEqual([]);
      expect(rdsMock).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
    });

    it('leaves out a reader whose endpoint is the host the master connection is on', async () => {
      // Prepare: the secret points at an instance endpoint of the cluster
      cluster('orders', [
        ['orders-1', true],
        ['orders-2', false],
        ['orders-3', false],
      ]);
      instances(instance('orders-2'), instance('orders-3'));
      // Act
      const members = await otherMembers(rds, aurora, primary(endpoint('orders-2')));
      // Assess
      expect(members.map((m) => m.id)).toEqual(['orders-3']);
    });

    it('fails closed naming a reader that has no endpoint yet (still being created)', async () => {
      // Prepare
      cluster('orders', [
        ['orders-1', true],
        ['orders-2', false],
      ]);
      instances(instance('orders-2', { DBInstanceStatus: 'creating', Endpoint: undefined }));
      // Act
      const err = await memberError(otherMembers(rds, aurora, primary(CLUSTER_HOST)));
      // Assess
      expect(err.member).toBe('orders-2');
      expect(err.message).toBe(
        'Aurora reader orders-2 has no endpoint yet (status "creating"), so its sessions cannot be checked: retry the rotation when it is available',
      );
    });

    it.each([
      ['access is denied', awsError('AccessDenied', 403, 'User: arn:aws:sts::123456789012:assumed-role/r is not authorized to perform: rds:DescribeDBClusters')],
      ['RDS throttles', awsError('Throttling', 400, 'Rate exceeded')],
    ])('fails closed naming the cluster when DescribeDBClusters fails because %s', async (_name, failure) => {
      // Prepare
      rdsMock.on(DescribeDBClustersCommand).rejects(failure);
      // Act
      const err = await memberError(otherMembers(rds, aurora, primary(CLUSTER_HOST)));
      // Assess
      expect(err.member).toBe('orders');
      expect(err.message).toContain('cannot list the members of cluster orders to check their sessions: DescribeDBClusters failed: ');
      expect(err.message).toContain(failure.name);
    });

    it('fails closed naming the reader when DescribeDBInstances fails for it', async () => {
      // Prepare
      cluster('orders', [
        ['orders-1', true],
        ['orders-2', false],
      ]);
      rdsMock
        .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'orders-2' })
        .rejects(awsError('AccessDenied', 403, 'not authorized to perform: rds:DescribeDBInstances'));
      // Act
      const err = await memberError(otherMembers(rds, aurora, primary(CLUSTER_HOST)));
      // Assess
      expect(err.member).toBe('orders-2');
      expect(err.message).toMatch(/^cannot describe Aurora reader orders-2 to check its sessions: DescribeDBInstances failed: AccessDenied \(HTTP 403\)/);
    });

    it('fails closed when the cluster is not found', async () => {
      // Prepare
      rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [] });
      // Act
      const err = await memberError(otherMembers(rds, aurora, primary(CLUSTER_HOST)));
      // Assess
      expect(err.member).toBe('orders');
      expect(err.message).toMatch(/cluster orders was not found/);
    });

    it('fails closed when the cluster belongs to a global database (its other regions cannot be checked)', async () => {
      // Prepare
      cluster('orders', [['orders-1', true]], { GlobalClusterIdentifier: 'orders-global' });
      // Act
      const err = await memberError(otherMembers(rds, aurora, primary(CLUSTER_HOST)));
      // Assess
      expect(err.member).toBe('orders');
      expect(err.message).toMatch(/belongs to the global database orders-global/);
    });
  });

  describe('postgres', () => {
    it('returns the read replicas of the secret\'s instance, cascading replicas included', async () => {
      // Prepare
      instances(
        instance('orders', { ReadReplicaDBInstanceIdentifiers: ['orders-r1', 'orders-r2'] }),
        instance('orders-r1', { ReadReplicaDBInstanceIdentifiers: ['orders-r1a'] }),
        instance('orders-r2'),
        instance('orders-r1a'),
      );
      // Act
      const members = await otherMembers(rds, { engine: 'postgres', dbInstanceIdentifier: 'orders' }, primary(INSTANCE_HOST));
      // Assess
      expect(members).toEqual(
        ['orders-r1', 'orders-r2', 'orders-r1a'].map((id) => ({
          id,
          kind: 'read-replica',
          target: { host: endpoint(id), port: 5432, dbname: 'orders', ssl: 'verify-full' },
        })),
      );
    });

    it('finds the instance from an instance endpoint host, and has no members without replicas', async () => {
      // Prepare
      instances(instance('orders'));
      // Act
      const members = await otherMembers(rds, { engine: 'postgres' }, primary(INSTANCE_HOST));
      // Assess
      expect(members).toEqual([]);
      expect(rdsMock).toHaveReceivedCommandWith(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'orders' });
    });

    it('checks a replica listed by an ARN of its own region', async () => {
      // Prepare
      instances(
        instance('orders', { ReadReplicaDBInstanceIdentifiers: [`arn:aws:rds:${REGION}:123456789012:db:orders-r1`] }),
        instance('orders-r1'),
      );
      // Act
      const members = await otherMembers(rds, { engine: 'postgres', dbInstanceIdentifier: 'orders' }, primary(INSTANCE_HOST));
      // Assess
      expect(members.map((m) => [m.id, m.kind])).toEqual([['orders-r1', 'read-replica']]);
    });

    it('fails closed naming a cross-region read replica: the function cannot reach it', async () => {
      // Prepare
      const remote = 'arn:aws:rds:us-west-2:123456789012:db:orders-dr';
      instances(instance('orders', { ReadReplicaDBInstanceIdentifiers: ['orders-r1', remote] }), instance('orders-r1'));
      // Act
      const err = await memberError(otherMembers(rds, { engine: 'postgres', dbInstanceIdentifier: 'orders' }, primary(INSTANCE_HOST)));
      // Assess
      expect(err.member).toBe(remote);
      expect(err.message).toBe(
        `DB instance orders has read replica(s) in another region (${remote}): the rotation function (region ${REGION}) ` +
          'cannot reach them to check their sessions',
      );
    });

    it('fails closed naming an Aurora read replica cluster of the instance', async () => {
      // Prepare
      instances(instance('orders', { ReadReplicaDBClusterIdentifiers: ['orders-aurora'] }));
      // Act
      const err = await memberError(otherMembers(rds, { engine: 'postgres', dbInstanceIdentifier: 'orders' }, primary(INSTANCE_HOST)));
      // Assess
      expect(err.member).toBe('orders-aurora');
      expect(err.message).toMatch(/replicates to the Aurora cluster\(s\) orders-aurora, whose sessions converge does not check/);
    });

    it('fails closed naming the instance when DescribeDBInstances is denied', async () => {
      // Prepare
      rdsMock.on(DescribeDBInstancesCommand).rejects(awsError('AccessDenied', 403, 'not authorized to perform: rds:DescribeDBInstances'));
      // Act
      const err = await memberError(otherMembers(rds, { engine: 'postgres', dbInstanceIdentifier: 'orders' }, primary(INSTANCE_HOST)));
      // Assess
      expect(err.member).toBe('orders');
      expect(err.message).toMatch(/^cannot describe DB instance orders to check its sessions: DescribeDBInstances failed: AccessDenied/);
    });

    it('returns the readable standbys of a Multi-AZ DB cluster found from its cluster endpoint', async () => {
      // Prepare
      cluster(
        'orders',
        [
          ['orders-instance-1', true],
          ['orders-instance-2', false],
          ['orders-instance-3', false],
        ],
        { Engine: 'postgres' },
      );
      instances(instance('orders-instance-2'), instance('orders-instance-3'));
      // Act
      const members = await otherMembers(rds, { engine: 'postgres' }, primary(CLUSTER_HOST));
      // Assess
      expect(members.map((m) => [m.id, m.kind])).toEqual([
        ['orders-instance-2', 'cluster-reader'],
        ['orders-instance-3', 'cluster-reader'],
      ]);
    });

    it.each([
      ['a self-managed server', 'db.internal.example.com'],
      ['a local test server', '127.0.0.1'],
      ['localhost', 'localhost'],
    ])('has no other members for %s without identifiers, and calls no RDS API', async (_name, host) => {
      // Act
      const members = await otherMembers(rds, { engine: 'postgres' }, primary(host));
      // Assess
      expect(members).toEqual([]);
      expect(rdsMock.calls()).toHaveLength(0);
    });

    it('fails closed for an RDS Proxy host without identifiers', async () => {
      // Prepare
      const host = `orders-proxy.proxy-${HASH}.${REGION}.rds.amazonaws.com`;
      // Act
      const err = await memberError(otherMembers(rds, { engine: 'postgres' }, primary(host)));
      // Assess
      expect(err.member).toBe(host);
      expect(err.message).toMatch(/set "dbInstanceIdentifier" or "dbClusterIdentifier" in the secret/);
      expect(rdsMock.calls()).toHaveLength(0);
    });
  });
});

describe('Functions: sessionsOnMembers, terminateOnMembers', () => {
  it('connect to nothing and return nothing when there are no other members', async () => {
    // Prepare
    const master = { username: 'admin', password: 'not-used-here' };
    // Act
    const listed = await sessionsOnMembers([], master, { connectTimeoutMs: 1 }, 'app');
    const terminated = await terminateOnMembers([], master, { connectTimeoutMs: 1 }, 'app');
    // Assess
    expect(listed).toEqual([]);
    expect(terminated).toEqual([]);
  });
});
