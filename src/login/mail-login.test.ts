// The passdb decision for services postern does not know (issue 11 item 9), with stand-ins that
// fail the test if the decision reaches for a mailbox, a hash or the limiter.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { checkMailLogin, type MailLoginDeps } from './mail-login.js';

function unreachable(what: string): never {
  throw new Error(`an unknown service must not reach ${what}`);
}

function setup() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
  const deps: MailLoginDeps = {
    loginData: { load: async () => unreachable('the login data') },
    verifier: {
      verify: async () => unreachable('a hash'),
      verifyDummy: async () => unreachable('a dummy hash'),
    },
    sources: { sourceFor: () => unreachable('a password source') },
    log,
    saslLog: { record: () => unreachable('sasl_log'), flush: async () => undefined, close: async () => undefined },
    limiter: {
      check: async () => unreachable('the limiter'),
      recordFailure: async () => unreachable('the limiter'),
      recordSuccess: async () => unreachable('the limiter'),
      listBans: async () => [],
      liftBan: async () => false,
      close: () => undefined,
    },
  };
  return { deps, lines };
}

describe('checkMailLogin with a service postern does not know', () => {
  it.each(['lmtp', 'doveadm', 'imaps', 'x', 'constructor', '__proto__'])(
    'denies %s before any lookup, hash or count',
    async (service) => {
      const { deps } = setup();
      await expect(
        checkMailLogin(deps, { username: 'alice@example.org', password: 'pw', realRip: '192.0.2.1', service }),
      ).resolves.toEqual({ result: 'user_disabled', reason: 'unknown_service', source: 'none' });
    },
  );

  it('says so in the log once per name, naming the services it knows', async () => {
    const { deps, lines } = setup();
    const ask = (service: string) =>
      checkMailLogin(deps, { username: 'bob@example.org', password: 'pw', realRip: '192.0.2.1', service });
    await ask('made-up-service-1');
    await ask('made-up-service-1');
    await ask('made-up-service-2');
    const warnings = lines.filter((line) => line.msg === 'passdb: login for a service postern does not know, denied');
    expect(warnings.map((line) => line.service)).toEqual(['made-up-service-1', 'made-up-service-2']);
    expect(warnings[0]?.known).toEqual(expect.arrayContaining(['imap', 'pop3', 'smtp', 'submission', 'sieve', 'SOGO']));
    expect(JSON.stringify(lines)).not.toContain('"pw"');
  });
});
