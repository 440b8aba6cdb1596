/**
 * The status command's decision table (cli/commands/next-action.ts): one row per rotation and
 * consumer state, and the rotation's classification from the function's records.
 */
import type { ConsumerView } from '../../cli/commands/consumer-series';
import {
  classifyRotation,
  decideNextAction,
  type NextActionInput,
  type RotationView,
  type UserSessionsView,
} from '../../cli/commands/next-action';

const NOW = Date.parse('2030-01-01T02:30:00.000Z');
const iso = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

const waitingAtGate: RotationView = {
  state: 'waiting-at-gate',
  versionId: 'v8',
  generation: 8,
  since: iso(600),
  waitingSeconds: 600,
  evaluations: 31,
};
const idle: RotationView = { state: 'idle' };

const ok = (name: string, mode: ConsumerView['mode'] = 'live'): ConsumerView => ({
  name,
  mode,
  maxStalenessSeconds: 60,
  state: 'OK',
  generation: 8,
  lastSeenGeneration: 8,
  dataAgeSeconds: 20,
});

function input(over: Partial<NextActionInput>): NextActionInput {
  return {
    secret: 'orders-app',
    rotation: idle,
    currentGeneration: 7,
    consumers: [],
    sessionsListed: false,
    gatePollSeconds: 20,
    now: NOW,
    ...over,
  };
}

const stuck: ConsumerView = {
  name: 'orders-api',
  mode: 'live',
  maxStalenessSeconds: 60,
  state: 'BLOCKING',
  blocks: 'promotion',
  reason: 'stale',
  requiredGeneration: 8,
  generation: 7,
  lastSeenGeneration: 7,
  since: iso(3000),
  dataAgeSeconds: 15,
};

describe('decideNextAction: one row per state', () => {
  it('waiting at the gate, a live consumer STALE, no --sessions: restart it, say to pass --sessions, offer finish --force as the alternative', () => {
    const a = decideNextAction(
      input({ rotation: waitingAtGate, consumers: [stuck, ok('billing')] }),
    );
    expect(a).toMatchObject({
      kind: 'restart',
      consumer: 'orders-api',
      command: 'restart orders-api',
    });
    expect(a.processes).toBeUndefined();
    expect(a.why).toContain(
      'the promotion gate has held version v8 (generation 8) for 10m 0s (31 evaluation(s))',
    );
    expect(a.why).toContain(
      `orders-api (live) is STALE since ${iso(3000)}: reports generation 7, needs 8`,
    );
    expect(a.why).toContain('pass --sessions to list its processes');
    expect(a.why).toContain('converge finish orders-app --force');
  });

  it('waiting at the gate, with --sessions: restart names only the processes below the pending generation', () => {
    const c: ConsumerView = {
      ...stuck,
      processes: [
        { host: 'host-a', pid: 11, generation: 8, user: 'app_b', sessions: 2 },
        { host: 'host-b', pid: 42, generation: 7, user: 'app_a', sessions: 3 },
      ],
    };
    const a = decideNextAction(
      input({ rotation: waitingAtGate, consumers: [c], sessionsListed: true }),
    );
    expect(a.kind).toBe('restart');
    expect(a.processes).toEqual([
      { host: 'host-b', pid: 42, generation: 7, user: 'app_a', sessions: 3 },
    ]);
    expect(a.why).toContain('host-b pid 42 (generation 7, user app_a, 3 sessions)');
  });

  it('waiting at the gate, a live consumer SILENT for longer than 10x its staleness: restart, and finish --force if it is gone', () => {
    const silent: ConsumerView = {
      ...stuck,
      reason: 'silent',
      generation: undefined,
      lastSeenGeneration: 7,
      since: iso(1800),
      dataAgeSeconds: 1800,
    };
    const a = decideNextAction(input({ rotation: waitingAtGate, consumers: [silent] }));
    expect(a.kind).toBe('restart');
    expect(a.why).toContain(
      `orders-api (live) is SILENT since ${iso(1800)}, last reported generation 7`,
    );
    expect(a.why).toContain(
      'If orders-api is gone for good (silent for 30m 0s, over 10x its maxStaleness): `converge finish orders-app --force`',
    );
  });

  it('waiting at the gate, a live consumer SILENT whose sessions already use the pending generation: its reporter is named, not an old credential', () => {
    const silent: ConsumerView = {
      ...stuck,
      reason: 'silent',
      generation: undefined,
      lastSeenGeneration: 7,
      since: iso(60),
      dataAgeSeconds: 60,
      processes: [{ host: 'host-a', pid: 7, generation: 8, user: 'app_b', sessions: 2 }],
    };
    const a = decideNextAction(
      input({ rotation: waitingAtGate, consumers: [silent], sessionsListed: true }),
    );
    expect(a).toMatchObject({ kind: 'restart', consumer: 'orders-api', processes: [] });
    expect(a.why).toContain(
      'its sessions already use generation 8 (host-a pid 7 (generation 8, user app_b, 2 sessions)), but it sends no metrics: check its reporter',
    );
  });

  it('waiting at the gate, every blocker already reports the pending generation: wait, with an estimate of window + poll', () => {
    const adopted: ConsumerView = {
      ...stuck,
      lastSeenGeneration: 8,
      since: undefined,
      windowClearsInSeconds: 45,
    };
    const a = decideNextAction(input({ rotation: waitingAtGate, consumers: [adopted] }));
    expect(a).toMatchObject({
      kind: 'wait',
      estimateSeconds: 65,
      command: 'converge status orders-app --watch',
    });
    expect(a.why).toContain('orders-api already report(s) generation 8');
  });

  it('waiting at the gate, nothing blocks any more: wait for the next evaluation', () => {
    const a = decideNextAction(input({ rotation: waitingAtGate, consumers: [ok('orders-api')] }));
    expect(a).toMatchObject({ kind: 'wait', estimateSeconds: 20 });
  });

  it('waiting at the gate with finish --force set: wait for the re-drive', () => {
    const a = decideNextAction(
      input({ rotation: waitingAtGate, consumers: [stuck], forceFinish: true }),
    );
    expect(a.kind).toBe('wait');
    expect(a.why).toContain('finish --force is set');
  });

  it('in progress (no gate hold recorded): wait for the steps and the live consumers', () => {
    const a = decideNextAction(
      input({
        rotation: { state: 'in-progress', versionId: 'v8', generation: 8 },
        consumers: [ok('orders-api')],
      }),
    );
    expect(a).toMatchObject({ kind: 'wait', estimateSeconds: 80 });
  });

  it('a step failed for the waiting version: abort, then fix the cause, with the error', () => {
    const rotation: RotationView = {
      state: 'step-failed',
      versionId: 'v8',
      generation: 8,
      failure: {
        step: 'setSecret',
        at: iso(60),
        errorName: 'AuthenticationFailedError',
        message: 'the master could not log in',
      },
    };
    const a = decideNextAction(input({ rotation, consumers: [stuck] }));
    expect(a).toMatchObject({ kind: 'abort', command: 'converge abort orders-app' });
    expect(a.why).toContain(
      `setSecret failed at ${iso(60)}: AuthenticationFailedError: the master could not log in`,
    );
    expect(a.why).toContain('then run `converge rotate orders-app`');
  });

  it('a step failed and nothing waits: investigate', () => {
    const rotation: RotationView = {
      state: 'step-failed',
      failure: {
        step: 'finishSecret',
        at: iso(60),
        errorName: 'AwsCallError',
        message: 'throttled',
      },
    };
    expect(decideNextAction(input({ rotation })).kind).toBe('investigate');
  });

  const heldByGuard: RotationView = {
    state: 'held-by-guard',
    versionId: 'v8',
    generation: 8,
    failure: {
      step: 'setSecret',
      at: iso(120),
      errorName: 'RevocationBlockedError',
      message: 'Revocation blocked',
    },
  };

  it('held by the guard with a stale consumer: restart it (its processes on the old user)', () => {
    const billing: ConsumerView = {
      name: 'billing',
      mode: 'restart-only',
      maxStalenessSeconds: 300,
      state: 'BLOCKING',
      blocks: 'revocation',
      reason: 'stale',
      requiredGeneration: 7,
      generation: 6,
      since: iso(7200),
      processes: [
        { host: 'h', pid: 1, generation: 6, user: 'app_b', sessions: 1 },
        { host: 'h', pid: 2, generation: 7, user: 'app_a', sessions: 1 },
      ],
    };
    const a = decideNextAction(
      input({
        rotation: heldByGuard,
        consumers: [billing],
        sessionsListed: true,
        alternateUser: 'app_b',
      }),
    );
    expect(a).toMatchObject({
      kind: 'restart',
      consumer: 'billing',
      processes: [{ host: 'h', pid: 1, generation: 6, user: 'app_b', sessions: 1 }],
    });
    expect(a.why).toContain('the revocation guard refused to overwrite app_b at setSecret');
  });

  it('held by the guard with only unattributed sessions: investigate them by pid/application_name/client, or rotate --emergency on compromise', () => {
    const sessions: UserSessionsView = {
      username: 'app_b',
      stages: ['AWSPREVIOUS'],
      consumers: [],
      unattributed: [{ pid: 5151, applicationName: 'psql', clientAddr: '10.0.0.9' }],
    };
    const a = decideNextAction(
      input({
        rotation: heldByGuard,
        consumers: [ok('orders-api')],
        sessionsListed: true,
        alternateUser: 'app_b',
        alternateSessions: sessions,
      }),
    );
    expect(a.kind).toBe('investigate');
    expect(a.why).toContain('pid 5151 application_name "psql" from 10.0.0.9');
    expect(a.why).toContain(
      '`converge abort orders-app` then `converge rotate orders-app --emergency`',
    );
  });

  it('held by the guard, no consumer blocks and no --sessions: investigate with --sessions', () => {
    const a = decideNextAction(
      input({ rotation: heldByGuard, consumers: [ok('orders-api')], alternateUser: 'app_b' }),
    );
    expect(a).toMatchObject({
      kind: 'investigate',
      command: 'converge status orders-app --sessions',
    });
  });

  it('CloudWatch unreadable: investigate', () => {
    const a = decideNextAction(input({ rotation: waitingAtGate, cloudWatchError: 'AccessDenied' }));
    expect(a.kind).toBe('investigate');
    expect(a.why).toContain('CloudWatch could not be read (AccessDenied)');
  });

  it('idle, the next guard would hold on a stale restart-only consumer: restart it before the next rotation', () => {
    const billing: ConsumerView = {
      name: 'billing',
      mode: 'restart-only',
      maxStalenessSeconds: 300,
      state: 'BLOCKING',
      blocks: 'revocation',
      reason: 'stale',
      requiredGeneration: 7,
      generation: 6,
      dataAgeSeconds: 30,
    };
    const a = decideNextAction(input({ consumers: [ok('orders-api'), billing] }));
    expect(a).toMatchObject({ kind: 'restart', consumer: 'billing' });
    expect(a.why).toContain('Restart before the next rotation');
  });

  it('idle, a live consumer still on an aborted generation (AHEAD): wait for it to fall back', () => {
    const ahead: ConsumerView = {
      ...ok('orders-api'),
      state: 'BLOCKING',
      blocks: 'revocation',
      reason: 'ahead',
      requiredGeneration: 7,
    };
    const a = decideNextAction(input({ consumers: [ahead] }));
    expect(a).toMatchObject({ kind: 'wait', estimateSeconds: 60 });
  });

  it('idle, no consumer has any data: investigate', () => {
    const a = decideNextAction(
      input({
        consumers: [
          {
            name: 'x',
            mode: 'live',
            maxStalenessSeconds: 60,
            state: 'BLOCKING',
            blocks: 'revocation',
            reason: 'silent',
          },
        ],
      }),
    );
    expect(a.kind).toBe('investigate');
    expect(a.why).toContain('no registered consumer has reported in the last hour');
  });

  it('idle, old-user sessions of a consumer (--sessions): restart that consumer', () => {
    const sessions: UserSessionsView = {
      username: 'app_b',
      stages: ['AWSPREVIOUS'],
      consumers: [
        {
          consumer: 'orders-api',
          processes: [{ host: 'h', pid: 9, generation: 6, user: 'app_b', sessions: 1 }],
        },
      ],
      unattributed: [],
    };
    const a = decideNextAction(
      input({ consumers: [ok('orders-api')], sessionsListed: true, alternateSessions: sessions }),
    );
    expect(a).toMatchObject({
      kind: 'restart',
      consumer: 'orders-api',
      processes: sessions.consumers[0].processes,
    });
  });

  it('idle and healthy: none', () => {
    expect(decideNextAction(input({ consumers: [ok('orders-api')] })).kind).toBe('none');
  });
});

describe('classifyRotation: the rotation state from stages and records', () => {
  const gate = { versionId: 'v8', since: iso(600), evaluations: 31, lastEvaluation: iso(10) };
  it('a pending version with its gate record is waiting at the gate, with how long and how many evaluations', () => {
    expect(
      classifyRotation({ pending: { versionId: 'v8', generation: 8 }, gate, now: NOW }),
    ).toEqual({
      state: 'waiting-at-gate',
      versionId: 'v8',
      generation: 8,
      since: iso(600),
      waitingSeconds: 600,
      evaluations: 31,
      lastEvaluation: iso(10),
    });
  });

  it('a pending version without a gate record is in progress; a gate record of another version does not count', () => {
    expect(classifyRotation({ pending: { versionId: 'v9' }, gate, now: NOW }).state).toBe(
      'in-progress',
    );
  });

  it('a failure of the waiting version is step-failed, or held-by-guard for RevocationBlockedError', () => {
    const failure = {
      versionId: 'v8',
      step: 'testSecret',
      at: iso(30),
      errorName: 'DatabaseConnectionError',
      message: 'refused',
    };
    expect(
      classifyRotation({ pending: { versionId: 'v8' }, lastFailure: failure, now: NOW }),
    ).toMatchObject({ state: 'step-failed', since: iso(30), failure: { step: 'testSecret' } });
    expect(
      classifyRotation({
        pending: { versionId: 'v8' },
        lastFailure: { ...failure, step: 'setSecret', errorName: 'RevocationBlockedError' },
        now: NOW,
      }).state,
    ).toBe('held-by-guard');
  });

  it('a failure older than the latest gate evaluation of the same version is history: waiting at the gate', () => {
    const failure = {
      versionId: 'v8',
      step: 'setSecret',
      at: iso(300),
      errorName: 'AwsCallError',
      message: 'x',
    };
    expect(
      classifyRotation({ pending: { versionId: 'v8' }, gate, lastFailure: failure, now: NOW })
        .state,
    ).toBe('waiting-at-gate');
  });

  it('nothing waits: a failure newer than the last rotation is step-failed, an older one is idle', () => {
    const failure = {
      versionId: 'v9',
      step: 'finishSecret',
      at: iso(30),
      errorName: 'AwsCallError',
      message: 'x',
    };
    expect(classifyRotation({ lastRotated: iso(3600), lastFailure: failure, now: NOW }).state).toBe(
      'step-failed',
    );
    expect(classifyRotation({ lastRotated: iso(10), lastFailure: failure, now: NOW }).state).toBe(
      'idle',
    );
  });
});
