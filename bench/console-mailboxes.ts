// The console's mailbox list with 50,000 mailboxes: seeds them (in 50 domains, with quota2 rows)
// into a database of its own, signs a superadmin in over HTTP and times the first page of
// GET /admin/mailboxes as a browser gets it (session check, query, render), plus a domain
// filter, searches (part of a name, of an address, a domain, one mailbox, nothing) and a later
// page. Names are 20 first names x 20 surnames, so "erin" and "Smith" each match 1 in 20.
// Prints the median and worst of 20 requests each.
// Run: npm run bench:console (needs MariaDB and Redis as the tests do).
import { performance } from 'node:perf_hooks';
import { createAdminAccount } from '../src/admin/admin-accounts.js';
import { DEFAULT_MAILBOX_ATTRIBUTES } from '../src/storage/templated-mailboxes.js';
import { startTestPostern } from '../test/support/env.js';

const MAILBOXES = 50_000;
const DOMAINS = 50;
const ORIGIN = 'https://admin.example.org';
const FIRST = ['Ada', 'Bo', 'Cleo', 'Dan', 'Erin', 'Finn', 'Gus', 'Hana', 'Ivo', 'Jo'];
const FIRST2 = ['Kai', 'Lea', 'Mo', 'Nia', 'Oli', 'Pia', 'Rui', 'Sam', 'Tove', 'Uma'];
const LAST = ['Smith', 'Jones', 'Berg', 'Costa', 'Dahl', 'Eder', 'Fox', 'Gray', 'Holm', 'Ito'];
const LAST2 = ['Kerr', 'Lund', 'Moss', 'Nord', 'Ortiz', 'Park', 'Quist', 'Roth', 'Sato', 'Tan'];
const FIRSTS = [...FIRST, ...FIRST2];
const LASTS = [...LAST, ...LAST2];

const postern = await startTestPostern('bench_console', { POSTERN_PUBLIC_URL: ORIGIN, POSTERN_BCRYPT_COST: '4' });
try {
  const { db } = postern.deps;
  const seedStart = performance.now();
  for (let d = 0; d < DOMAINS; d++) {
    await db.execute(
      "INSERT INTO domain (domain, description, mailboxes, quota, maxquota, created, modified) VALUES (?, '', 2000, 10240000, 10240, NOW(), NOW())",
      [`d${d}.example`],
    );
  }
  const attributes = JSON.stringify(DEFAULT_MAILBOX_ATTRIBUTES);
  const BATCH = 1000;
  for (let start = 0; start < MAILBOXES; start += BATCH) {
    const rows = Array.from({ length: BATCH }, (_, i) => {
      const n = start + i;
      const domain = `d${n % DOMAINS}.example`;
      const first = FIRSTS[n % 20] as string;
      const last = LASTS[Math.floor(n / 20) % 20] as string;
      const local = `${first}.${last}${n}`.toLowerCase();
      return { username: `${local}@${domain}`, local, name: `${first} ${last}`, domain };
    });
    await db.execute(
      `INSERT INTO mailbox (username, password, name, local_part, domain, quota, attributes, kind, authsource, active, created, modified)
       VALUES ${rows.map(() => "(?, '{PLAIN}x', ?, ?, ?, 1073741824, ?, '', 'mailcow', 1, NOW(), NOW())").join(', ')}`,
      rows.flatMap((row) => [row.username, row.name, row.local, row.domain, attributes]),
    );
    await db.execute(
      `INSERT INTO quota2 (username, bytes, messages) VALUES ${rows.map(() => '(?, 1048576, 10)').join(', ')}`,
      rows.map((row) => row.username),
    );
  }
  console.log(`seeded ${MAILBOXES} mailboxes in ${DOMAINS} domains in ${Math.round(performance.now() - seedStart)} ms`);
  await db.execute('ANALYZE TABLE mailbox, quota2');

  const created = await createAdminAccount(
    { db, hashPool: postern.deps.hashPool, passwordScheme: 'BLF-CRYPT' },
    { username: 'bench', password: 'bench passphrase 1', superadmin: true, domains: [] },
  );
  if (!created.ok) throw new Error(created.message);
  const login = await fetch(`${postern.webUrl}/admin/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'bench', password: 'bench passphrase 1' }).toString(),
  });
  const cookie = login.headers
    .getSetCookie()
    .map((value) => value.split(';')[0])
    .join('; ');
  if (login.status !== 303 || !cookie) throw new Error(`sign-in failed: ${login.status}`);

  async function time(label: string, path: string) {
    const samples: number[] = [];
    let rows = 0;
    for (let i = 0; i < 21; i++) {
      const begin = performance.now();
      const response = await fetch(`${postern.webUrl}${path}`, { headers: { cookie } });
      const html = await response.text();
      const spent = performance.now() - begin;
      if (response.status !== 200) throw new Error(`${path}: ${response.status}`);
      rows = (html.match(/<a href="\/admin\/mailboxes\/[^"?]*%40/g) ?? []).length;
      if (i > 0) samples.push(spent); // the first request warms the connection and the caches
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)] ?? 0;
    const worst = samples.at(-1) ?? 0;
    console.log(`${label.padEnd(34)} ${rows} rows  median ${median.toFixed(1)} ms  worst ${worst.toFixed(1)} ms`);
  }

  await time('first page', '/admin/mailboxes');
  await time('first page of one domain', '/admin/mailboxes?domain=d7.example');
  await time('search "erin" (1 in 20)', '/admin/mailboxes?q=erin');
  await time('search "Smith" (1 in 20)', '/admin/mailboxes?q=Smith');
  await time('search "d7.example" (1 in 50)', '/admin/mailboxes?q=d7.example');
  await time('search "erin.smith" (1 in 400)', '/admin/mailboxes?q=erin.smith');
  await time('search "erin.smith40004" (1)', '/admin/mailboxes?q=erin.smith40004');
  await time('search "nobody" (none)', '/admin/mailboxes?q=nobody');
  await time('page after ivo.smith30008', `/admin/mailboxes?after=${encodeURIComponent('ivo.smith30008@d8.example')}`);
} finally {
  await postern.destroy();
}
