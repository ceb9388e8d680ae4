// mailcow's own passwd-verify.lua always speaks HTTPS (LuaSec, `https://nginx:9082`, insecure).
// postern's internal TLS listener (POSTERN_INTERNAL_TLS_*) answers it: a TLS client gets the
// passdb's answers, and mailcow's unchanged script, with only its URL line changed as the README
// says, logs users in through a real Dovecot.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { imapLogin } from '../support/mail-clients.js';
import { seedAliasDomain, seedDomain, seedMailbox } from '../support/seed.js';
import { selfSignedCertificate } from '../support/tls.js';

/** mailcow-dockerized 06424670 (2026-08-05), data/conf/dovecot/auth/passwd-verify.lua, unchanged. */
const MAILCOW_LUA = resolve(import.meta.dirname, '../fixtures/mailcow/passwd-verify.lua');
/** The one line of mailcow's script that the README's drop-in steps change. */
const MAILCOW_URL_LINE = '    url = "https://nginx:9082",';

let dir: string;
let certificate: { key: string; cert: string };
let postern: TestPostern;
let tlsPort: number;
let dovecot: RunningDovecot;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-mailcow-tls-'));
  // Dovecot's auth process (user dovecot) must reach the script in here; the key stays 0600.
  chmodSync(dir, 0o755);
  certificate = selfSignedCertificate();
  writeFileSync(join(dir, 'cert.pem'), certificate.cert);
  writeFileSync(join(dir, 'key.pem'), certificate.key, { mode: 0o600 });
  postern = await startTestPostern('mailcowtls', {
    POSTERN_INTERNAL_TLS_LISTEN: '127.0.0.1:0',
    POSTERN_INTERNAL_TLS_CERT_FILE: join(dir, 'cert.pem'),
    POSTERN_INTERNAL_TLS_KEY_FILE: join(dir, 'key.pem'),
  });
  tlsPort = Number(new URL(postern.internalTlsUrl as string).port);
  await seedDomain(postern.deps.db, 'example.org');
  await seedAliasDomain(postern.deps.db, 'alias.example', 'example.org');
  await seedMailbox(postern.deps.db, {
    username: 'mia@example.org',
    passwordHash: await postern.deps.hashPool.hash('mia pässwörd', 'BLF-CRYPT'),
  });

  // The drop-in step: point mailcow's script at postern, nothing else changed.
  const script = readFileSync(MAILCOW_LUA, 'utf8');
  expect(script.split('\n')).toContain(MAILCOW_URL_LINE);
  const edited = script.replace(MAILCOW_URL_LINE, `    url = "https://127.0.0.1:${tlsPort}",`);
  const luaFile = join(dir, 'passwd-verify.lua');
  writeFileSync(luaFile, edited, { mode: 0o644 });
  dovecot = await startDovecot({ authUrl: 'unused-by-mailcow-lua', luaFile });
});

afterAll(async () => {
  await dovecot?.stop();
  await postern?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** POST / over TLS the way mailcow's Lua does: JSON body, content-length, no token, Connection: close. */
function postTls(body: unknown, ca: string | null = certificate.cert): Promise<{ status: number; json: unknown }> {
  const text = JSON.stringify(body);
  return new Promise((resolvePost, reject) => {
    const sent = request(
      {
        host: '127.0.0.1',
        port: tlsPort,
        method: 'POST',
        path: '/',
        // A connection of its own: no pooled socket or TLS session from an earlier request.
        agent: false,
        ...(ca ? { ca } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' },
      },
      (response) => {
        let received = '';
        response.on('data', (chunk: Buffer) => {
          received += chunk.toString('utf8');
        });
        response.on('end', () => resolvePost({ status: response.statusCode ?? 0, json: JSON.parse(received) }));
      },
    );
    sent.on('error', reject);
    sent.end(text);
  });
}

describe('the internal TLS listener', () => {
  const body = (password: string) => ({
    username: 'mia@example.org',
    password,
    real_rip: '192.0.2.61',
    service: 'imap',
  });

  it('answers a TLS client with the passdb decision, as the plain listener does', async () => {
    await expect(postTls(body('mia pässwörd'))).resolves.toEqual({
      status: 200,
      json: { success: true, result: 'ok', username: 'mia@example.org' },
    });
    await expect(postTls(body('wrong'))).resolves.toMatchObject({ status: 401, json: { success: false } });
    const plain = await postern.passdb(body('mia pässwörd'));
    expect(plain.status).toBe(200);
  });

  it('presents the configured certificate (a client trusting it verifies the connection)', async () => {
    // Without the CA the self-signed certificate is refused: TLS is real, not a plain socket.
    await expect(postTls(body('mia pässwörd'), null)).rejects.toThrow(/self-signed|self signed/);
  });

  it('refuses plain HTTP on the TLS port', async () => {
    await expect(
      fetch(`http://127.0.0.1:${tlsPort}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status),
    ).rejects.toThrow();
  });
});

describe("mailcow's passwd-verify.lua in real Dovecot, pointed at the TLS listener", () => {
  it('logs in with the right password', async () => {
    const result = await imapLogin(dovecot.imapPort, 'mia@example.org', 'mia pässwörd');
    expect(result.line).toMatch(/^a1 OK/);
  });

  it('refuses a wrong password as a mismatch', async () => {
    const result = await imapLogin(dovecot.imapPort, 'mia@example.org', 'not mia');
    expect(result.line).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/);
    expect(dovecot.logs()).not.toMatch(/HTTP request failed/);
  });

  // The script sends no resolve_alias_domains and ignores the answer's username, so Dovecot would
  // go on as mia@alias.example, which mailcow's SQL userdb does not know.
  // mailcow's user_login() finds no such mailbox row and answers 401; so does postern.
  it('refuses an alias-domain name as mailcow does, while our Lua logs it in as the mailbox', async () => {
    const result = await imapLogin(dovecot.imapPort, 'mia@alias.example', 'mia pässwörd');
    expect(result.line).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\]/);
    const ours = await postern.passdb({
      username: 'mia@alias.example',
      password: 'mia pässwörd',
      real_rip: '192.0.2.61',
      service: 'imap',
      resolve_alias_domains: true,
    });
    expect(ours).toMatchObject({ status: 200, body: { username: 'mia@example.org' } });
  });
});
