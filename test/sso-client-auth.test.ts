// Sign-in and the test connection authenticate postern's OIDC client the same
// way (postern_token_auth_method), and a provider's refusal of the client credentials is said as
// such, never as "identity provider unavailable". Against panva's real oidc-provider with a
// secret holding `-`, `_` and `.`: once as a provider that does not form-decode HTTP Basic
// credentials, once configured to refuse client_secret_post.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SsoLogin } from '../src/login/sso-login.js';
import { genericOidcSettingsSchema, saveIdpSettings } from '../src/sources/idp-settings.js';
import { testIdpConnection } from '../src/sources/test-connection.js';
import { insertMailboxTemplate } from '../src/storage/templates.js';
import { startTestPostern, type TestPostern } from './support/env.js';
import { startOidcProvider, type TestOidcProvider } from './support/oidc-provider.js';
import { seedDomain } from './support/seed.js';

const SECRET = 'pa-ss_wo.rd-2026';
const REDIRECT = 'http://127.0.0.1:8080/login/sso/callback';
let postern: TestPostern;

beforeAll(async () => {
  postern = await startTestPostern('sso_client_auth', {
    POSTERN_SECRET_KEY: 'sso-client-auth-secret-key-0123456789abcdef',
    POSTERN_BCRYPT_COST: '5',
    POSTERN_IDP_TIMEOUT_MS: '3000',
  });
  await seedDomain(postern.deps.db, 'example.org');
  await insertMailboxTemplate(postern.deps.db, 'Standard', { quota: 1024 ** 3, active: 1, imap_access: 1 });
});

afterAll(async () => {
  await postern?.destroy();
});

function settingsFor(op: TestOidcProvider, method?: string) {
  return genericOidcSettingsSchema.parse({
    authsource: 'generic-oidc',
    postern_issuer_url: op.issuer,
    client_id: op.clientId,
    client_secret: SECRET,
    redirect_url: REDIRECT,
    default_template: 'Standard',
    ...(method ? { postern_token_auth_method: method } : {}),
  });
}

/** Drive the provider's login with fetch (manual redirects, a cookie jar) up to postern's callback. */
async function signIn(login: SsoLogin, username: string, password: string) {
  const begun = await login.beginSso();
  if (!begun.ok) throw new Error(`beginSso refused: ${begun.reason}`);
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
  const keep = (response: Response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const cut = pair.indexOf('=');
      jar.set(pair.slice(0, cut), pair.slice(cut + 1));
    }
  };
  let url = begun.authorizationUrl;
  for (let hop = 0; hop < 12; hop++) {
    if (url.startsWith(REDIRECT)) {
      return login.completeSso({ callbackUrl: new URL(url), binding: begun.binding, ip: '203.0.113.7' });
    }
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
    keep(response);
    const location = response.headers.get('location');
    if (location) {
      url = new URL(location, url).href;
      continue;
    }
    const action = /action="([^"]+)"/.exec(await response.text())?.[1];
    if (!action) throw new Error(`no login form at ${url} (HTTP ${response.status})`);
    const posted = await fetch(new URL(action, url), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }),
    });
    keep(posted);
    url = new URL(posted.headers.get('location') ?? '', url).href;
  }
  throw new Error('too many redirects');
}

async function scenario(
  providerOptions: Parameters<typeof startOidcProvider>[0] extends infer O ? Partial<O> : never,
  method: string | undefined,
) {
  const op = await startOidcProvider({
    redirectUris: [REDIRECT],
    clientSecret: SECRET,
    accounts: [{ username: 'dana', password: 'dana-pw', email: 'dana@example.org' }],
    ...providerOptions,
  });
  const settings = settingsFor(op, method);
  await saveIdpSettings(postern.deps.db, settings, postern.deps.secretBox);
  const report = await testIdpConnection(settings, { timeoutMs: 3000 });
  const outcome = await signIn(postern.deps.ssoLogin, 'dana', 'dana-pw');
  await op.close();
  return { report, outcome };
}

describe('OIDC client authentication, the same for sign-in and the test connection', () => {
  it('a provider that does not form-decode Basic credentials: client_secret_basic is refused in both, and said so', async () => {
    const { report, outcome } = await scenario({ decodesBasicCredentials: false }, 'client_secret_basic');
    expect(report.ok).toBe(false);
    expect(report.steps.at(-1)).toMatchObject({
      step: 'client_authentication',
      ok: false,
      detail: expect.stringMatching(/client credentials rejected with client_secret_basic .*client_secret_post/),
    });
    expect(outcome).toMatchObject({ ok: false, reason: 'idp_client_rejected' });
    expect(outcome).not.toMatchObject({ status: 502 });
    expect(JSON.stringify(report)).not.toContain(SECRET);
  });

  it('the same provider with client_secret_post (mailcow’s way): the test passes and sign-in works', async () => {
    const { report, outcome } = await scenario({ decodesBasicCredentials: false }, 'client_secret_post');
    expect(report).toMatchObject({ ok: true });
    expect(report.steps.at(-1)?.detail).toMatch(/authenticated with client_secret_post/);
    expect(outcome).toMatchObject({ ok: true });
  });

  it('posting is the default, as in mailcow', async () => {
    const { report, outcome } = await scenario({ decodesBasicCredentials: false }, undefined);
    expect(report.steps.at(-1)?.detail).toMatch(/authenticated with client_secret_post/);
    expect(outcome).toMatchObject({ ok: true });
  });

  it('a provider configured to refuse client_secret_post: refused in both with post, both work with basic', async () => {
    const refused = await scenario({ clientAuthMethods: ['client_secret_basic'] }, 'client_secret_post');
    expect(refused.report.steps.at(-1)).toMatchObject({
      step: 'client_authentication',
      ok: false,
      detail: expect.stringMatching(
        /client credentials rejected with client_secret_post .*lists only client_secret_basic/,
      ),
    });
    expect(refused.outcome).toMatchObject({ ok: false, reason: 'idp_client_rejected' });
    const accepted = await scenario({ clientAuthMethods: ['client_secret_basic'] }, 'client_secret_basic');
    expect(accepted.report).toMatchObject({ ok: true });
    expect(accepted.outcome).toMatchObject({ ok: true });
  });
});
