/**
 * The model-based adversarial test at its CI budget: random sequences of rotations, step retries,
 * crashes, faults, operator actions, re-drives and consumer behaviour against real PostgreSQL,
 * with every invariant checked after every command (see property.ts and invariants.ts).
 *
 * The seed is fixed so CI is reproducible; CONVERGE_MODEL_SEED and CONVERGE_MODEL_RUNS change it
 * for a local exploration (the long run is `npm run model -- --runs 10000`).
 *
 * The second block proves the net has no hole where it matters: each invariant is broken on
 * purpose, the way a defect would break it, and the checker must name it.
 */
import {
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { withAdmin } from '../../cli/local/postgres';
import type { ConsumerRegistration } from '../../lambda/shared/registry';
import { AWSCURRENT, AWSPENDING } from '../../lambda/shared/secret';
import { tlsServer } from '../support/database';
import type { LiveProcess } from './consumers';
import { ModelDatabase } from './database';
import { Checker, InvariantViolation, Ledger } from './invariants';
import { runModel } from './property';
import { restoreSdkStubs, World } from './world';

const SEED = Number(process.env.CONVERGE_MODEL_SEED ?? 20261130);
const RUNS = Number(process.env.CONVERGE_MODEL_RUNS ?? 200);
const FOCUSED_RUNS = 60;

afterAll(() => restoreSdkStubs());

describe('Model-based: random rotations, retries, crashes, operator actions and consumers on real PostgreSQL', () => {
  it(`keeps every invariant after every command of ${RUNS} random sequences (seed ${SEED})`, async () => {
    // Act
    const summary = await runModel({
      server: tlsServer(),
      runs: RUNS,
      seed: SEED,
      maxCommands: 20,
    });
    // stderr is not captured: CI shows the seed and what the budget exercised.
    process.stderr.write(
      `model: seed ${SEED}, ${summary.runs} runs, ${summary.commandsExecuted} commands, ${summary.distinctInterleavings} distinct interleavings, ` +
        `${summary.invariantChecks} invariant checks, ${summary.failures.length} failures, ${summary.wallSeconds} s\n`,
    );
    // Assess
    expect(summary.failures).toEqual([]);
    expect(summary.runs).toBe(RUNS);
    // The budget really exercised what it claims (a model that stopped rotating would pass vacuously).
    const count = (pattern: RegExp) =>
      Object.entries(summary.invocations)
        .filter(([k]) => pattern.test(k))
        .reduce((n, [, v]) => n + v, 0);
    expect(count(/^finishSecret: ok$/)).toBeGreaterThan(RUNS / 4);
    expect(count(/: crashed$/)).toBeGreaterThan(0);
    expect(count(/^setSecret: RevocationBlockedError$/)).toBeGreaterThan(0);
    expect(count(/^finishSecret: (ConvergencePendingError|RotationAbortedError)$/)).toBeGreaterThan(
      0,
    );
    expect(count(/^cli-redrive: promoted$/)).toBeGreaterThan(0);
    expect(Object.keys(summary.finalGenerations).some((g) => Number(g) >= 3)).toBe(true);
  }, 900_000);

  it(`keeps every invariant through ${FOCUSED_RUNS} sequences focused on the operator's override tags (seed ${SEED})`, async () => {
    // Act: rotations, steps, time and operator commands, the operator often dying right after it
    // wrote an override tag (an emergency or force tag left behind must never act on another rotation)
    const summary = await runModel({
      server: tlsServer(),
      runs: FOCUSED_RUNS,
      seed: SEED,
      maxCommands: 12,
      focus: 'overrides',
    });
    process.stderr.write(
      `model (overrides): seed ${SEED}, ${summary.runs} runs, ${summary.commandsExecuted} commands, ` +
        `${summary.failures.length} failures, ${summary.wallSeconds} s\n`,
    );
    // Assess
    expect(summary.failures).toEqual([]);
    expect(summary.runs).toBe(FOCUSED_RUNS);
    expect(summary.invocations['cli-redrive: promoted'] ?? 0).toBeGreaterThan(0);
  }, 900_000);
});

describe('Model-based: the checker names each broken invariant', () => {
  let database: ModelDatabase;
  let world: World;
  let ledger: Ledger;
  let checker: Checker;

  beforeAll(async () => {
    database = await ModelDatabase.create(tlsServer());
  });
  afterAll(() => database.drop());
  async function open(registry: ConsumerRegistration[]): Promise<void> {
    world = await World.create({
      database,
      registry,
      liveProcesses: 1,
      gateMaxWaitSeconds: 300,
      tag: `sabotage${Date.now()}`,
    });
    ledger = new Ledger();
    checker = await Checker.open(world, ledger);
  }
  async function close(): Promise<void> {
    await checker.close();
    await world.dispose();
  }
  beforeEach(() => open([{ name: 'web', mode: 'live', maxStalenessSeconds: 60 }]));
  afterEach(() => close());

  /** One command's frame around `sabotage`; resolves to the violation the checker raised. */
  async function violationAfter(
    sabotage: () => Promise<unknown>,
  ): Promise<InvariantViolation | undefined> {
    world.beginCommand();
    await checker.before();
    await sabotage();
    await world.queryRound();
    return checker.after().then(
      () => undefined,
      (e: unknown) => e as InvariantViolation,
    );
  }

  it('1: AWSCURRENT stops logging in (a password changed outside the protocol)', async () => {
    // Without consumers, so that no consumer evidence (invariant 3) is involved.
    await close();
    await open([]);
    const v = await violationAfter(() =>
      withAdmin(database.server, world.db.dbname, database.server.superuser, (c) =>
        c.query(
          `ALTER ROLE ${c.escapeIdentifier(world.db.app.username)} PASSWORD 'changed-behind-its-back'`,
        ),
      ),
    );
    expect(v).toBeInstanceOf(InvariantViolation);
    expect(v!.invariant).toBe(1);
  });

  it('4: an aborted version becomes AWSCURRENT', async () => {
    const token = world.sm.stagePendingPlaceholder(world.secretArn);
    ledger.aborted.add(token);
    const v = await violationAfter(async () => {
      const sm = new SecretsManagerClient({});
      const current = world.versionAt(AWSCURRENT)!;
      await sm.send(
        new PutSecretValueCommand({
          SecretId: world.secretArn,
          ClientRequestToken: token,
          SecretString: JSON.stringify({ ...current.secret, generation: 1 }),
          VersionStages: [AWSPENDING],
        }),
      );
      await sm.send(
        new UpdateSecretVersionStageCommand({
          SecretId: world.secretArn,
          VersionStage: AWSCURRENT,
          MoveToVersionId: token,
          RemoveFromVersionId: current.id,
        }),
      );
    });
    expect(v?.invariant).toBe(4);
    expect(v?.message).toContain('aborted');
  });

  it('6: the master runs an object of the tenant', async () => {
    const v = await violationAfter(() =>
      withAdmin(database.server, world.db.dbname, world.db.master, (c) =>
        c.query("SELECT public.converge_probe('planted')"),
      ),
    );
    expect(v?.invariant).toBe(6);
  });

  it('8: a password is printed', async () => {
    const v = await violationAfter(async () =>
      console.log(`connecting with ${world.db.app.password}`),
    );
    expect(v?.invariant).toBe(8);
    expect(v?.message).not.toContain(world.db.app.password);
  });

  it('3: the password of a user with an open session changes', async () => {
    const live = world.processes[0] as LiveProcess;
    await live.hold();
    const v = await violationAfter(() =>
      withAdmin(database.server, world.db.dbname, database.server.superuser, async (c) => {
        await c.query(
          `ALTER ROLE ${c.escapeIdentifier(world.db.app.username)} PASSWORD 'changed-under-a-session'`,
        );
      }),
    );
    // 3 is checked before 1: the cause (a change under a session) is named, not its effect.
    expect(v?.invariant).toBe(3);
    expect(v?.message).toContain('sessions stayed open');
  });
});
