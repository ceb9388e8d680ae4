// Mailbox names beyond ASCII through nginx's auth_request into real SOGo (Debian sogod 5.8). SOGo
// reads plain header values in GNUstep's default C-string encoding (Latin-1 here: a UTF-8
// x-webobjects-remote-user arrives garbled and SOGo answers 403),
// but the Basic pair of Authorization as UTF-8, and takes the user from that pair when nginx sends
// no x-webobjects-remote-user (SOPE's WOHttpTransaction.m). See setSogoIdentity in
// src/http/routes/sogo.ts.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/passwords/hash-password.js';
import { type RunningDovecot, startDovecot } from '../support/dovecot.js';
import { MYSQL_ROOT_URL, startTestPostern, type TestPostern } from '../support/env.js';
import { type RunningNginx, startNginx } from '../support/nginx.js';
import { freePort } from '../support/processes.js';
import { seedAppPassword, seedDomain, seedMailbox } from '../support/seed.js';
import {
  type RunningSogo,
  startSogo,
  startWebmailUpstream,
  type WebmailUpstream,
} from '../support/webmail-upstream.js';

const DOMAIN = 'unicode.example';
const TOKEN = randomBytes(24).toString('hex');
const DAV_PASSWORD = 'dav app pässwörd';
const MAILBOXES = [
  { script: 'Cyrillic', username: `дарья@${DOMAIN}` },
  { script: 'Greek', username: `ελένη@${DOMAIN}` },
  { script: 'CJK', username: `山田@${DOMAIN}` },
  { script: 'Latin-1', username: `zoë@${DOMAIN}` },
  { script: 'ASCII', username: `ann@${DOMAIN}` },
];
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
/** A raw header value as Node's parser hands it over (one char per byte) back to the bytes' UTF-8 text. */
const asUtf8 = (raw: string) => Buffer.from(raw, 'latin1').toString('utf8');

let postern: TestPostern;
let nginx: RunningNginx;
let upstream: WebmailUpstream;
let dovecot: RunningDovecot;
let sogo: RunningSogo;

beforeAll(async () => {
  const port = await freePort();
  upstream = await startWebmailUpstream();
  postern = await startTestPostern('sogounicode', {
    POSTERN_SOGO_NETWORKS: '127.0.0.1/32',
    POSTERN_PUBLIC_URL: `http://127.0.0.1:${port}`,
    POSTERN_INTERNAL_TOKEN: TOKEN,
    POSTERN_WEBMAIL_URL: '/SOGo/so/',
    POSTERN_BAN_EXEMPT_NETWORKS: '127.0.0.0/8',
  });
  const db = postern.deps.db;
  await seedDomain(db, DOMAIN);
  for (const { username } of MAILBOXES) {
    await seedMailbox(db, { username, passwordHash: await hashPassword('mailbox pw', 'SSHA256') });
    await seedAppPassword(db, {
      mailbox: username,
      passwordHash: await hashPassword(DAV_PASSWORD, 'SSHA256'),
      protocols: ['dav_access'],
    });
  }
  nginx = await startNginx({
    port,
    webUrl: postern.webUrl,
    internalUrl: postern.internalUrl,
    webmailUrl: upstream.url,
    internalToken: TOKEN,
  });
  dovecot = await startDovecot({ authUrl: `${postern.internalUrl}/`, internalToken: TOKEN });
  sogo = await startSogo({ imapPort: dovecot.imapPort, mysqlRootUrl: MYSQL_ROOT_URL, database: postern.name });
  upstream.forwardTo(sogo.url);
});

afterAll(async () => {
  upstream?.forwardTo(undefined);
  await sogo?.stop();
  await dovecot?.stop();
  await nginx?.stop();
  await upstream?.close();
  await postern?.destroy();
});

describe('a DAV login of a mailbox whose name is not ASCII', () => {
  it.each(MAILBOXES)(
    'reaches real SOGo as the $script mailbox, named in Authorization (and in x-webobjects-remote-user only in ASCII)',
    async ({ username }) => {
      upstream.clear();
      const authorization = basic(username, DAV_PASSWORD);
      const path = `/SOGo/dav/${encodeURIComponent(username)}/Calendar/`;
      const response = await fetch(`${nginx.url}${path}`, {
        method: 'PROPFIND',
        headers: { authorization, depth: '0', 'content-type': 'application/xml; charset=utf-8' },
        body: '<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><displayname/></prop></propfind>',
      });
      const text = await response.text();
      const context = `${text.slice(0, 2000)}\n--- sogo ---\n${sogo.logs().slice(-3000)}\n--- nginx ---\n${nginx.logs().slice(-2000)}`;
      // SOGo answered for this user's own calendar collection: it decoded the identity as sent.
      expect(response.status, context).toBe(207);
      // SOGo writes the name in its XML as character references (&#1076;…).
      const hrefs = decodeURIComponent(text).replace(/&#(\d+);/g, (_, code: string) =>
        String.fromCodePoint(Number(code)),
      );
      expect(hrefs, context).toContain(`<D:href>/SOGo/dav/${username}/Calendar/</D:href>`);

      const isAscii = /^[\x21-\x7e]+$/.test(username);
      expect(upstream.headerValues('x-webobjects-remote-user').map(asUtf8)).toEqual(isAscii ? [username] : []);
      const [sent, ...more] = upstream.headerValues('authorization');
      expect(more).toEqual([]);
      expect(asUtf8(Buffer.from((sent as string).replace(/^Basic /, ''), 'base64').toString('latin1'))).toBe(
        `${username}:${DAV_PASSWORD}`,
      );
    },
  );

  it('names the canonical mailbox to SOGo when the client typed another spelling', async () => {
    upstream.clear();
    // The domain in capitals: postern folds A-Z only (src/address.ts), SOGo gets the stored name.
    const stored = MAILBOXES[0]?.username;
    if (!stored) throw new Error('no mailbox in the fixture');
    const typed = stored.replace(DOMAIN, DOMAIN.toUpperCase());
    const response = await fetch(
      `${nginx.url}/SOGo/dav/${encodeURIComponent(MAILBOXES[0]?.username as string)}/Calendar/`,
      {
        method: 'PROPFIND',
        headers: { authorization: basic(typed, DAV_PASSWORD), depth: '0' },
      },
    );
    expect(response.status, sogo.logs().slice(-2000)).toBe(207);
    const [sent] = upstream.headerValues('authorization');
    expect(Buffer.from((sent as string).replace(/^Basic /, ''), 'base64').toString('utf8')).toBe(
      `${MAILBOXES[0]?.username}:${DAV_PASSWORD}`,
    );
  });

  it('still refuses a wrong password for such a mailbox with a Basic challenge', async () => {
    const response = await fetch(`${nginx.url}/SOGo/dav/${encodeURIComponent(MAILBOXES[0]?.username as string)}/`, {
      method: 'PROPFIND',
      headers: { authorization: basic(MAILBOXES[0]?.username as string, 'wrong'), depth: '0' },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Basic /);
  });
});
