// A lab Keycloak with a self-signed certificate: refused while TLS is verified, reachable for
// the sync and the mailpassword flow when its settings carry ignore_ssl_error (mailcow's switch).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createKeycloakPasswordSource } from '../src/sources/keycloak.js';
import type { LoginMailbox } from '../src/storage/mailboxes.js';
import { type SyncTestEnv, startSyncEnv } from './support/fake-keycloak.js';
import { seedDomain, seedMailbox } from './support/seed.js';
import { selfSignedCertificate } from './support/tls.js';

const DOMAIN = 'lab-kc.example';
let env: SyncTestEnv;

const mailbox: LoginMailbox = {
  username: `lena@${DOMAIN}`,
  passwordHash: '',
  active: 1,
  domainActive: true,
  authSource: 'keycloak',
  attributes: {},
};

function passwordSource() {
  return createKeycloakPasswordSource(
    { db: env.deps.db, secretBox: env.deps.secretBox, config: env.config, log: createLogger('silent') },
    { clientOptions: { sleep: async () => undefined } },
  );
}

beforeAll(async () => {
  env = await startSyncEnv('kc_tls', { kc: { tls: selfSignedCertificate() } });
  await seedDomain(env.deps.db, DOMAIN);
  await seedMailbox(env.deps.db, { username: mailbox.username, passwordHash: '', authsource: 'keycloak' });
  env.kc.setUsers([
    {
      username: 'lena',
      email: mailbox.username,
      attributes: { mailcow_password: [await env.deps.hashPool.hash('lena pw', 'SSHA256')] },
    },
  ]);
  expect(env.kc.url).toMatch(/^https:/);
});

afterAll(async () => {
  await env?.destroy();
});

describe('a Keycloak with a self-signed certificate', () => {
  it('is refused while its certificate is verified: the sync fails, the passdb answers a fault', async () => {
    await env.saveSettings({ ignore_ssl_error: false, mailpassword_flow: true, postern_deprovision: false });
    const report = await env.sync({ dryRun: true });
    expect(report.status).toBe('failed');
    expect(report.errors[0]).toMatch(/SELF_SIGNED/);
    expect(env.kc.counts.users).toBe(0);
    await expect(passwordSource().lookupPasswordHash(mailbox)).rejects.toMatchObject({ code: 'backend_unavailable' });
  });

  it('is used by the sync and the mailpassword flow with ignore_ssl_error', async () => {
    await env.saveSettings({ ignore_ssl_error: true, mailpassword_flow: true, postern_deprovision: false });
    const report = await env.sync({ dryRun: true });
    expect(report.status).not.toBe('failed');
    expect(env.kc.counts.users).toBeGreaterThan(0);
    await expect(passwordSource().lookupPasswordHash(mailbox)).resolves.toMatchObject({
      ok: true,
      hash: expect.stringMatching(/^\{SSHA256\}/),
    });
  });
});
