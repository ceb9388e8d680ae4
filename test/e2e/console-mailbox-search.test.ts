// The mailbox search of /admin/mailboxes and GET /api/v1/mailboxes?search= against real MariaDB:
// part of the local part, of the domain or of the full name, case-insensitively; LIKE's
// wildcards are plain characters; a domain admin's search stays inside its domains; the scan
// is bounded per request and a short page says where to go on (`next`, "Search further").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchAdminMailboxes } from '../../src/storage/mailboxes-search.js';
import { startTestPostern, type TestPostern } from '../support/env.js';
import { seedAdminAccount, seedDomain, seedMailbox } from '../support/seed.js';
import { consoleClient } from './console-client.js';

const ORIGIN = 'https://admin.example.org';
let postern: TestPostern;
const root = consoleClient(() => postern, ORIGIN);
const desk = consoleClient(() => postern, ORIGIN);

const MAILBOXES: [string, string][] = [
  ['erin@example.org', 'Erin Smith'],
  ['kerin.b@example.org', 'Kerin Berg'],
  ['bo@example.org', 'Bo Smithson'],
  ['ada@example.net', 'Ada Lovelace'],
  ['erin.x@example.net', 'Erin Jones'],
  ['p100%@example.net', 'Percent'],
  ['p1000@example.net', 'Thousand'],
];

async function search(client: typeof root, text: string, extra = '') {
  const reply = await client.api('GET', `/mailboxes?search=${encodeURIComponent(text)}${extra}`);
  expect(reply.status).toBe(200);
  const body = reply.json() as { mailboxes: { username: string }[]; next: string | null };
  return { names: body.mailboxes.map((row) => row.username), next: body.next };
}

beforeAll(async () => {
  postern = await startTestPostern('console_mailbox_search', { POSTERN_PUBLIC_URL: ORIGIN, POSTERN_BCRYPT_COST: '4' });
  const { db } = postern.deps;
  await seedDomain(db, 'example.org');
  await seedDomain(db, 'example.net');
  for (const [username, name] of MAILBOXES) {
    await seedMailbox(db, { username, passwordHash: '{PLAIN}x' });
    await db.execute('UPDATE mailbox SET name = ? WHERE username = ?', [name, username]);
  }
  await seedAdminAccount(postern, { username: 'root', password: 'root passphrase 01', superadmin: true });
  await seedAdminAccount(postern, {
    username: 'desk',
    password: 'desk passphrase 02',
    superadmin: false,
    domains: ['example.net'],
  });
  await root.signIn('root', 'root passphrase 01');
  await desk.signIn('desk', 'desk passphrase 02');
});

afterAll(async () => {
  await postern?.destroy();
});

describe('mailbox search', () => {
  it('finds part of a local part, of a domain or of a name, in any case, in address order', async () => {
    expect((await search(root, 'erin')).names).toEqual([
      'erin.x@example.net',
      'erin@example.org',
      'kerin.b@example.org',
    ]);
    expect((await search(root, 'example.org')).names).toEqual([
      'bo@example.org',
      'erin@example.org',
      'kerin.b@example.org',
    ]);
    expect((await search(root, 'Smith')).names).toEqual(['bo@example.org', 'erin@example.org']);
    expect((await search(root, 'SMITH')).names).toEqual(['bo@example.org', 'erin@example.org']);
    expect((await search(root, 'love')).names).toEqual(['ada@example.net']);
    expect(await search(root, 'nobody')).toEqual({ names: [], next: null });
  });

  it('takes %, _ and ! literally', async () => {
    expect((await search(root, '100%')).names).toEqual(['p100%@example.net']);
    expect((await search(root, 'p1_0')).names).toEqual([]);
    expect((await search(root, '!')).names).toEqual([]);
  });

  it('pages a search by keyset like the list', async () => {
    const first = await search(root, 'example', '&limit=4');
    expect(first.names).toEqual(['ada@example.net', 'bo@example.org', 'erin.x@example.net', 'erin@example.org']);
    expect(first.next).toBe('erin@example.org');
    const second = await search(root, 'example', `&limit=4&after=${encodeURIComponent(first.next as string)}`);
    expect(second.names).toEqual(['kerin.b@example.org', 'p100%@example.net', 'p1000@example.net']);
    expect(second.next).toBeNull();
  });

  it("keeps a domain admin's search inside its domains", async () => {
    expect((await search(desk, 'erin')).names).toEqual(['erin.x@example.net']);
    expect((await search(desk, 'example.org')).names).toEqual([]);
    expect((await search(desk, 'Smith')).names).toEqual([]);
  });

  it('reads at most scanRows rows per request and says where it stopped', async () => {
    const { db } = postern.deps;
    // In address order: ada, bo, erin.x, erin@, kerin.b, p100%, p1000.
    const bounded = await searchAdminMailboxes(db, { text: 'kerin', limit: 50, scanRows: 3 });
    expect(bounded).toEqual({ rows: [], scannedTo: 'erin.x@example.net' });
    const on = await searchAdminMailboxes(db, { text: 'kerin', limit: 50, scanRows: 3, after: 'erin.x@example.net' });
    expect(on.rows.map((row) => row.username)).toEqual(['kerin.b@example.org']);
    expect(on.scannedTo).toBe('p100%@example.net');
    // The last rows: the walk reaches the end, nothing to go on with.
    const end = await searchAdminMailboxes(db, { text: 'p1', limit: 50, scanRows: 3, after: 'erin@example.org' });
    expect(end.rows.map((row) => row.username)).toEqual(['p100%@example.net', 'p1000@example.net']);
    expect(end.scannedTo).toBeUndefined();
    // The bound counts only the rows in scope (here: the 3 of one domain, so no bound at all).
    const scoped = await searchAdminMailboxes(db, { text: 'kerin', limit: 50, scanRows: 3, only: ['example.org'] });
    expect(scoped).toEqual({ rows: [expect.objectContaining({ username: 'kerin.b@example.org' })] });
  });

  it('shows the search on the console page, with a labelled field and what it matches', async () => {
    const page = await root.request('GET', '/admin/mailboxes?q=smith');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<label for="mailbox-search">Search address, domain or name</label>');
    expect(page.text).toContain('value="smith"');
    expect(page.text).toContain('href="/admin/mailboxes/bo%40example.org"');
    expect(page.text).toContain('href="/admin/mailboxes/erin%40example.org"');
    expect(page.text).not.toContain('href="/admin/mailboxes/ada%40example.net"');
    expect(page.text).not.toContain('id="search-partial"');
    const none = await root.request('GET', '/admin/mailboxes?q=nobody');
    expect(none.text).toContain('No mailbox matches.');
  });

  // Last: it adds 50,001 mailboxes that the tests above do not expect.
  it('stops a search at 50,000 rows read and offers "Search further" from where it stopped', async () => {
    const { db } = postern.deps;
    await seedDomain(db, 'bulk.example');
    // MariaDB's SEQUENCE engine: one statement for m00001@ … m50001@bulk.example.
    await db.execute(
      `INSERT INTO mailbox (username, password, name, local_part, domain, quota, attributes, kind, authsource, active, created, modified)
       SELECT CONCAT('m', LPAD(seq, 5, '0'), '@bulk.example'), '{PLAIN}x', 'Bulk', CONCAT('m', LPAD(seq, 5, '0')),
              'bulk.example', 0, '{}', '', 'mailcow', 1, NOW(), NOW()
         FROM seq_1_to_50001`,
    );
    // In address order: the 5 mailboxes before "m", then the bulk ones: the 50,000th is m49995@.
    const first = await root.request('GET', '/admin/mailboxes?q=m4999');
    expect(first.status).toBe(200);
    const found = (text: string) =>
      [...text.matchAll(/href="\/admin\/mailboxes\/(m\d+)%40bulk\.example"/g)].map((m) => m[1]);
    expect(found(first.text)).toEqual(['m49990', 'm49991', 'm49992', 'm49993', 'm49994', 'm49995']);
    expect(first.text).toContain('id="search-partial"');
    expect(first.text).toContain('up to m49995@bulk.example');
    const further = /<a href="([^"]+)" id="next-page">Search further<\/a>/
      .exec(first.text)?.[1]
      ?.replace(/&amp;/g, '&');
    expect(further).toBe('/admin/mailboxes?q=m4999&after=m49995%40bulk.example');
    const second = await root.request('GET', further as string);
    expect(found(second.text)).toEqual(['m49996', 'm49997', 'm49998', 'm49999']);
    expect(second.text).not.toContain('id="search-partial"');
    expect(second.text).not.toContain('id="next-page"');
    // The API says the same with `next`.
    expect(await search(root, 'm4999')).toEqual({
      names: ['m49990', 'm49991', 'm49992', 'm49993', 'm49994', 'm49995'].map((m) => `${m}@bulk.example`),
      next: 'm49995@bulk.example',
    });
  }, 60_000);
});
