// The passdb decision on its own, beside the file it tests. First the services postern does not
// know, with stand-ins that fail the test if the decision reaches for a mailbox,
// a hash or the limiter; then the decision over fakes of the login data and the verifier.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { createLogger } from '../log.js';
import type { CredentialVerifier } from '../passwords/credential-verifier.js';
import { createSourceRegistry } from '../sources/registry.js';
import { APP_PASSWORD_PROTOCOLS, type AppPasswordRecord } from '../storage/app-passwords.js';
import type { LoginMailbox } from '../storage/mailboxes.js';
import type { SaslLogEntry } from '../storage/sasl-log.js';
import type { LoginData } from './login-data.js';
import { checkMailLogin, type MailLoginDeps, type MailLoginRequest } from './mail-login.js';

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

// The decision alone: no limiter, an in-memory loginData and a verifier whose "hash" of a
// password is `hash:<password>`. Every call is counted, so the tests see what each path costs.
interface FakeWorld {
  data: Map<string, LoginData>;
  verified: string[];
  dummies: number;
  cached?: { index: number };
  sasl: SaslLogEntry[];
  webmailSecret?: string;
  ssoPassword?: string;
  ssoUses: string[];
}

const hashOf = (password: string) => `hash:${password}`;

function mailboxOf(username: string, overrides: Partial<LoginMailbox> = {}): LoginMailbox {
  return {
    username,
    passwordHash: hashOf('mailbox-pw'),
    active: 1,
    domainActive: true,
    authSource: 'mailcow',
    attributes: { imap_access: '1', sogo_access: '1' },
    ...overrides,
  };
}

function appPasswordOf(
  id: number,
  mailbox: string,
  password: string,
  protocols: Partial<AppPasswordRecord['protocols']>,
) {
  const none = Object.fromEntries(APP_PASSWORD_PROTOCOLS.map((protocol) => [protocol, false]));
  return {
    id,
    name: `app ${id}`,
    mailbox,
    passwordHash: hashOf(password),
    active: true,
    protocols: { ...none, ...protocols } as AppPasswordRecord['protocols'],
    created: null,
  } satisfies AppPasswordRecord;
}

function decisionOnly(world: Partial<FakeWorld> = {}, extra: Partial<MailLoginDeps> = {}) {
  const w: FakeWorld = { data: new Map(), verified: [], dummies: 0, sasl: [], ssoUses: [], ...world };
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
  const verifier: CredentialVerifier = {
    async verify(_username, storedHash, candidate) {
      w.verified.push(storedHash);
      if (storedHash.startsWith('broken:')) return { ok: false, reason: 'malformed_hash', scheme: 'X' };
      return storedHash === hashOf(candidate) ? { ok: true, scheme: 'FAKE' } : { ok: false, reason: 'mismatch' };
    },
    async verifyDummy() {
      w.dummies++;
    },
    ...(w.cached
      ? {
          findCached: async () => ({
            index: (w.cached as { index: number }).index,
            verdict: { ok: true, scheme: 'FAKE' },
          }),
        }
      : {}),
  };
  const deps: MailLoginDeps = {
    loginData: {
      async load(name) {
        return w.data.get(name) ?? { mailbox: undefined, appPasswords: [], hasActiveTfa: false };
      },
    },
    verifier,
    // The real registry: which auth source answers with which hash is part of the decision.
    sources: createSourceRegistry(),
    log,
    saslLog: { record: (entry) => w.sasl.push(entry), flush: async () => undefined, close: async () => undefined },
    ...(w.webmailSecret
      ? {
          webmailSecrets: {
            isWebmailSecret: (_username: string, password: string) =>
              password === w.webmailSecret ? Promise.resolve(true) : false,
          },
        }
      : {}),
    ...(w.ssoPassword
      ? {
          sogoSso: {
            isSsoPassword: (password: string) => (password === w.ssoPassword ? Promise.resolve(true) : false),
            recordUse: async (username: string) => {
              w.ssoUses.push(username);
            },
          },
        }
      : {}),
    ...extra,
  };
  const login = (username: string, password: string, service = 'imap', more: Partial<MailLoginRequest> = {}) =>
    checkMailLogin(deps, { username, password, realRip: '192.0.2.7', service, ...more });
  return { w, lines, login };
}

function withMailbox(mailbox: LoginMailbox, appPasswords: AppPasswordRecord[] = [], hasActiveTfa = false) {
  return new Map([[mailbox.username, { mailbox, appPasswords, hasActiveTfa }]]);
}

describe('checkMailLogin, the decision alone (no limiter)', () => {
  const alice = 'alice@example.org';

  it('lets the right mailbox password in, by the folded name, and writes sasl_log', async () => {
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice)) });
    await expect(login('Alice@Example.ORG', 'mailbox-pw')).resolves.toEqual({
      result: 'ok',
      username: alice,
      via: 'password',
      appPasswordId: 0,
      source: 'mailcow',
    });
    expect(w.verified).toEqual([hashOf('mailbox-pw')]);
    expect(w.sasl).toEqual([{ username: alice, realRip: '192.0.2.7', service: 'imap', appPasswordId: 0 }]);
  });

  it('answers a wrong password with a mismatch and writes nothing', async () => {
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice)) });
    await expect(login(alice, 'guess')).resolves.toEqual({
      result: 'password_mismatch',
      reason: 'wrong_password',
      source: 'mailcow',
    });
    expect(w.sasl).toEqual([]);
  });

  it('answers an unknown user after the dummy work of a known one (POSTERN_LOGIN_HASH_FLOOR)', async () => {
    const { w, login } = decisionOnly({}, { loginHashFloor: 3 });
    await expect(login('nobody@example.org', 'pw')).resolves.toEqual({
      result: 'user_unknown',
      reason: 'no_such_mailbox',
      source: 'none',
    });
    expect(w.verified).toEqual([]);
    expect(w.dummies).toBe(3);
  });

  it('pads a login with fewer candidates than the floor with dummies', async () => {
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice)) }, { loginHashFloor: 3 });
    await login(alice, 'guess');
    expect(w.verified).toHaveLength(1);
    expect(w.dummies).toBe(2);
  });

  it('tries app passwords first, only those allowed for the service, and names the one that matched', async () => {
    const apps = [
      appPasswordOf(7, alice, 'dav-only', { dav_access: true }),
      appPasswordOf(8, alice, 'app-pw', { imap_access: true }),
    ];
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice), apps) });
    await expect(login(alice, 'app-pw')).resolves.toMatchObject({
      result: 'ok',
      via: 'app_password',
      appPasswordId: 8,
    });
    // The DAV-only app password costs no hash on an IMAP login.
    expect(w.verified).toEqual([hashOf('app-pw'), hashOf('mailbox-pw')]);
    expect(w.sasl[0]?.appPasswordId).toBe(8);
    // And it does not open IMAP even with its own secret.
    await expect(login(alice, 'dav-only')).resolves.toMatchObject({
      result: 'password_mismatch',
      reason: 'wrong_password',
    });
  });

  it('settles a login on a remembered success without hashing', async () => {
    const apps = [appPasswordOf(8, alice, 'app-pw', { imap_access: true })];
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice), apps), cached: { index: 0 } });
    await expect(login(alice, 'app-pw')).resolves.toMatchObject({ result: 'ok', appPasswordId: 8 });
    expect(w.verified).toEqual([]);
    expect(w.dummies).toBe(0);
  });

  it('tells a disabled mailbox, domain or service only to the holder of a valid password', async () => {
    const cases: [Partial<LoginMailbox>, string][] = [
      [{ active: 2 }, 'mailbox_inactive'],
      [{ active: 0 }, 'mailbox_inactive'],
      [{ domainActive: false }, 'domain_inactive'],
      [{ attributes: { imap_access: '0' } }, 'service_denied'],
    ];
    for (const [overrides, reason] of cases) {
      const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice, overrides)) });
      await expect(login(alice, 'mailbox-pw')).resolves.toEqual({ result: 'user_disabled', reason, source: 'mailcow' });
      await expect(login(alice, 'guess')).resolves.toMatchObject({
        result: 'password_mismatch',
        reason: 'wrong_password',
      });
      expect(w.sasl).toEqual([]);
    }
  });

  it('refuses the mailbox password of a mailbox with 2FA, after the hash, while app passwords still work', async () => {
    const apps = [appPasswordOf(9, alice, 'app-pw', { imap_access: true })];
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice), apps, true) });
    await expect(login(alice, 'mailbox-pw')).resolves.toEqual({
      result: 'password_mismatch',
      reason: 'tfa_required',
      source: 'mailcow',
    });
    expect(w.verified).toContain(hashOf('mailbox-pw'));
    await expect(login(alice, 'app-pw')).resolves.toMatchObject({ result: 'ok', via: 'app_password' });
  });

  it('takes no local password for an IdP mailbox: app passwords only', async () => {
    const oidc = mailboxOf(alice, { authSource: 'generic-oidc' });
    const empty = decisionOnly({ data: withMailbox(oidc) });
    await expect(empty.login(alice, 'mailbox-pw')).resolves.toEqual({
      result: 'password_mismatch',
      reason: 'no_local_password',
      source: 'generic-oidc',
    });
    expect(empty.w.verified).toEqual([]);
    expect(empty.w.dummies).toBe(1);
    const apps = [appPasswordOf(3, alice, 'app-pw', { imap_access: true })];
    const withApp = decisionOnly({ data: withMailbox(oidc, apps) });
    await expect(withApp.login(alice, 'app-pw')).resolves.toMatchObject({ result: 'ok', source: 'generic-oidc' });
  });

  it('treats an alias-domain name as unknown unless the caller takes the canonical name', async () => {
    const viaAlias = mailboxOf(alice, { viaAliasDomain: true });
    const data = new Map([['alice@alias.example', { mailbox: viaAlias, appPasswords: [], hasActiveTfa: false }]]);
    const { login } = decisionOnly({ data });
    await expect(login('alice@alias.example', 'mailbox-pw')).resolves.toMatchObject({
      result: 'user_unknown',
      reason: 'no_such_mailbox',
    });
    await expect(login('alice@alias.example', 'mailbox-pw', 'imap', { resolveAliasDomains: true })).resolves.toEqual({
      result: 'ok',
      username: alice,
      via: 'password',
      appPasswordId: 0,
      source: 'mailcow',
    });
  });

  it('logs a stored hash it cannot verify, without the candidate, and denies', async () => {
    const { lines, login } = decisionOnly({
      data: withMailbox(mailboxOf(alice, { passwordHash: 'broken:x' })),
    });
    await expect(login(alice, 'secret-candidate')).resolves.toMatchObject({
      result: 'password_mismatch',
      reason: 'wrong_password',
    });
    expect(lines.find((line) => line.msg === 'stored password hash cannot be verified')).toMatchObject({
      user: alice,
      problem: 'malformed_hash',
    });
    expect(JSON.stringify(lines)).not.toContain('secret-candidate');
  });

  it('lets a live webmail secret in as SOGo while the mailbox may use webmail', async () => {
    const open = decisionOnly({ data: withMailbox(mailboxOf(alice)), webmailSecret: 'webmail-secret' });
    await expect(open.login(alice, 'webmail-secret')).resolves.toEqual({
      result: 'ok',
      username: alice,
      via: 'webmail_session',
      appPasswordId: 0,
      source: 'mailcow',
    });
    expect(open.w.verified).toEqual([]);
    expect(open.w.sasl[0]?.service).toBe('SOGO');
    const closed = decisionOnly({
      data: withMailbox(mailboxOf(alice, { attributes: { sogo_access: '0' } })),
      webmailSecret: 'webmail-secret',
    });
    await expect(closed.login(alice, 'webmail-secret')).resolves.toMatchObject({
      result: 'user_disabled',
      reason: 'service_denied',
    });
  });

  it("accepts mailcow's SOGo SSO password for a webmail mailbox and records the use", async () => {
    const { w, login } = decisionOnly({ data: withMailbox(mailboxOf(alice)), ssoPassword: 'sso-pass' });
    await expect(login(alice, 'sso-pass')).resolves.toMatchObject({ result: 'ok', via: 'sogo_sso' });
    expect(w.ssoUses).toEqual([alice]);
  });

  it('throws a fault of the login data instead of answering', async () => {
    const { login } = decisionOnly(
      {},
      {
        loginData: {
          load: async () => {
            throw new AppError('backend_unavailable', 'MySQL is unreachable');
          },
        },
      },
    );
    await expect(login(alice, 'pw')).rejects.toMatchObject({ code: 'backend_unavailable' });
  });
});
