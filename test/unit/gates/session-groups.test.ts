import {
  describeSessionGroups,
  groupSessions,
  sessionForLog,
} from '../../../lambda/rotation/gates/session-groups';
import type { ScopedSession } from '../../../lambda/rotation/gates/session-scope';

function session(
  pid: number,
  applicationName: string,
  extra: Partial<ScopedSession> = {},
): ScopedSession {
  return {
    pid,
    applicationName,
    clientAddr: '10.0.0.9',
    database: 'orders',
    backendStart: '2026-01-01T00:00:00.000Z',
    member: 'primary',
    ...extra,
  };
}

describe('Function: groupSessions', () => {
  it('groups by consumer and process, counts sessions and keeps the oldest backend_start; the rest is unattributed', () => {
    const sessions = [
      session(10, 'cv1:orders-api:6:host-a:4242', { backendStart: '2026-01-01T00:05:00.000Z' }),
      session(11, 'cv1:orders-api:6:host-a:4242', { backendStart: '2026-01-01T00:01:00.000Z' }),
      session(12, 'cv1:orders-api:6:host-b:17'),
      session(13, 'cv1:billing:jobs:6:host-c:8'),
      session(14, 'psql', { clientAddr: '10.0.0.9' }),
      session(15, '', { clientAddr: null }),
    ];
    const groups = groupSessions(sessions);
    expect(groups.consumers).toEqual([
      {
        consumer: 'billing:jobs',
        processes: [
          {
            host: 'host-c',
            pid: 8,
            generation: 6,
            sessions: 1,
            oldestBackendStart: '2026-01-01T00:00:00.000Z',
          },
        ],
      },
      {
        consumer: 'orders-api',
        processes: [
          {
            host: 'host-a',
            pid: 4242,
            generation: 6,
            sessions: 2,
            oldestBackendStart: '2026-01-01T00:01:00.000Z',
          },
          {
            host: 'host-b',
            pid: 17,
            generation: 6,
            sessions: 1,
            oldestBackendStart: '2026-01-01T00:00:00.000Z',
          },
        ],
      },
    ]);
    expect(groups.unattributed.map((s) => s.pid)).toEqual([14, 15]);
  });

  it('lists a process on two generations once per generation', () => {
    const groups = groupSessions([session(1, 'cv1:a:6:h:9'), session(2, 'cv1:a:7:h:9')]);
    expect(groups.consumers[0]!.processes.map((p) => p.generation)).toEqual([6, 7]);
  });

  it('returns empty groups for no sessions', () => {
    expect(groupSessions([])).toEqual({ consumers: [], unattributed: [] });
  });
});

describe('Function: describeSessionGroups', () => {
  it('names consumers with their processes, then the unattributed sessions with application_name and client address', () => {
    const text = describeSessionGroups(
      groupSessions([
        session(10, 'cv1:orders-api:6:host-a:4242'),
        session(11, 'cv1:orders-api:6:host-a:4242'),
        session(5151, 'psql'),
        session(5152, 'etl', { clientAddr: null, member: 'orders-reader-1' }),
      ]),
    );
    expect(text).toBe(
      'orders-api (host-a pid 4242: 2 sessions, generation 6), unattributed 2 (pid 5151 application_name "psql" from 10.0.0.9; pid 5152 application_name "etl" on orders-reader-1)',
    );
  });

  it('caps long lists with a count of what is left', () => {
    const many = Array.from({ length: 8 }, (_, i) => session(100 + i, `cv1:a:1:h:${i + 1}`));
    const text = describeSessionGroups(groupSessions([...many, session(1, 'x'), session(2, 'y')]), {
      processes: 2,
      unattributed: 1,
    });
    expect(text).toBe(
      'a (h pid 1: 1 session, generation 1; h pid 2: 1 session, generation 1; 6 more process(es)), unattributed 2 (pid 1 application_name "x" from 10.0.0.9; 1 more)',
    );
  });
});

describe('Function: sessionForLog', () => {
  it('names the consumer, host, process and generation of an attributed session, and marks the others unattributed', () => {
    expect(sessionForLog(session(10, 'cv1:orders-api:6:host-a:4242'))).toMatchObject({
      pid: 10,
      consumer: 'orders-api',
      host: 'host-a',
      processId: 4242,
      generation: 6,
    });
    expect(sessionForLog(session(11, 'psql'))).toMatchObject({
      pid: 11,
      unattributed: true,
      applicationName: 'psql',
      clientAddr: '10.0.0.9',
    });
  });
});
