// The asynchronous audit writer and the passdb's refusal audit against the real MariaDB: entries
// are queued without waiting, written in batches, throttled per key, bounded when the queue is
// full, kept for the next try while writes fail; only refusals for a reason other than a wrong
// secret are recorded, once per (reason, mailbox, client, service) per window.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dropDatabase, MYSQL_ROOT_URL, uniqueName } from '../../test/support/env.js';
import { createLogger } from '../log.js';
import type { DenialReason } from '../login/mail-login.js';
import { createDb, type Db } from '../storage/db.js';
import { applyMigrations } from '../storage/migrate.js';
import { createAuditWriter } from './audit-writer.js';
import { createLoginRefusalAudit } from './login-refusals.js';

const name = uniqueName('audit_writer');
let db: Db;
const log = createLogger('silent');

beforeAll(async () => {
  db = await createDb({ url: `${MYSQL_ROOT_URL}/${name}`, poolSize: 2, createDatabase: true });
  await applyMigrations(db, log);
});

beforeEach(async () => {
  await db.execute('DELETE FROM postern_audit');
});

afterAll(async () => {
  await db?.close();
  await dropDatabase(name);
});

const rows = () =>
  db.many<{ actor: string; actor_kind: string; action: string; target: string | null; detail: unknown; ip: string }>(
    'SELECT actor, actor_kind, action, target, detail, ip FROM postern_audit ORDER BY id',
  );
const parsed = async () =>
  (await rows()).map((row) => ({
    ...row,
    detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail,
  }));

describe('createAuditWriter', () => {
  it('queues without waiting and writes the queue in one batch', async () => {
    const writer = createAuditWriter(db, log, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      expect(writer.record({ actor: { kind: 'system', name: 'test' }, action: 'test.event', target: `t${i}` })).toBe(
        true,
      );
    }
    expect(await rows()).toEqual([]);
    await writer.flush();
    expect((await rows()).map((row) => row.target)).toEqual(['t0', 't1', 't2']);
    await writer.close();
  });

  it('writes by itself within the flush interval', async () => {
    const writer = createAuditWriter(db, log, { flushIntervalMs: 20 });
    writer.record({ actor: { kind: 'system', name: 'test' }, action: 'test.timer' });
    for (let i = 0; i < 100 && (await rows()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await rows()).map((row) => row.action)).toEqual(['test.timer']);
    await writer.close();
  });

  it('admits one entry per throttle key per window', async () => {
    let now = 1_000_000;
    const writer = createAuditWriter(db, log, { flushIntervalMs: 60_000, throttleMs: 600_000, now: () => now });
    const entry = { actor: { kind: 'system' as const, name: 'test' }, action: 'test.throttled' };
    expect(writer.record(entry, { throttleKey: 'k' })).toBe(true);
    expect(writer.record(entry, { throttleKey: 'k' })).toBe(false);
    expect(writer.record(entry, { throttleKey: 'other' })).toBe(true);
    now += 600_001;
    expect(writer.record(entry, { throttleKey: 'k' })).toBe(true);
    await writer.close();
    expect((await rows()).length).toBe(3);
  });

  it('drops entries beyond the bound instead of growing', async () => {
    const writer = createAuditWriter(db, log, { flushIntervalMs: 60_000, maxQueued: 2 });
    const accepted = [1, 2, 3, 4].map((i) =>
      writer.record({ actor: { kind: 'system', name: 'test' }, action: 'test.bound', target: `t${i}` }),
    );
    expect(accepted).toEqual([true, true, false, false]);
    await writer.close();
    expect((await rows()).map((row) => row.target)).toEqual(['t1', 't2']);
  });

  it('keeps entries while writes fail and writes them once the database answers again', async () => {
    let failing = true;
    const flaky = {
      execute: (sql: string, params?: Parameters<Db['execute']>[1]) =>
        failing ? Promise.reject(new Error('connection refused')) : db.execute(sql, params),
    };
    const writer = createAuditWriter(flaky, log, { flushIntervalMs: 60_000 });
    writer.record({ actor: { kind: 'system', name: 'test' }, action: 'test.retry' });
    await writer.flush();
    expect(await rows()).toEqual([]);
    failing = false;
    await writer.flush();
    expect((await rows()).map((row) => row.action)).toEqual(['test.retry']);
    await writer.close();
  });

  it('refuses entries after close', async () => {
    const writer = createAuditWriter(db, log);
    await writer.close();
    expect(writer.record({ actor: { kind: 'system', name: 'test' }, action: 'test.closed' })).toBe(false);
  });
});

describe('createLoginRefusalAudit', () => {
  const denial = (reason: DenialReason, extra: Record<string, unknown> = {}) => ({
    username: 'alice@example.org',
    service: 'imap',
    realRip: '192.0.2.10',
    reason,
    ...extra,
  });

  it('records refusals other than a wrong secret, with service and IP, and nothing else', async () => {
    const writer = createAuditWriter(db, log, { flushIntervalMs: 60_000 });
    const report = createLoginRefusalAudit(writer);
    for (const reason of ['wrong_password', 'no_such_mailbox', 'no_local_password', 'unknown_upstream'] as const) {
      report(denial(reason));
    }
    report(denial('tfa_required'));
    report(denial('mailbox_inactive', { service: 'pop3' }));
    report(denial('domain_inactive'));
    report(denial('service_denied', { service: 'smtp' }));
    report(denial('disabled_upstream'));
    await writer.close();
    const entries = await parsed();
    expect(entries.map((entry) => entry.detail)).toEqual([
      { reason: 'tfa_required', service: 'imap' },
      { reason: 'mailbox_inactive', service: 'pop3' },
      { reason: 'domain_inactive', service: 'imap' },
      { reason: 'service_denied', service: 'smtp' },
      { reason: 'disabled_upstream', service: 'imap' },
    ]);
    for (const entry of entries) {
      expect(entry).toMatchObject({
        actor: 'alice@example.org',
        actor_kind: 'mailbox',
        action: 'mail_login.refused',
        target: 'alice@example.org',
        ip: '192.0.2.10',
      });
    }
  });

  it('writes one row per reason, mailbox, client and service per window, and one per banned IP', async () => {
    const writer = createAuditWriter(db, log, { flushIntervalMs: 60_000 });
    const report = createLoginRefusalAudit(writer);
    for (let i = 0; i < 20; i++) report(denial('tfa_required'));
    report(denial('tfa_required', { realRip: '192.0.2.11' }));
    for (let i = 0; i < 20; i++) {
      report(denial('rate_limited', { username: i % 2 ? undefined : `user${i}@example.org`, bannedScope: 'ip' }));
    }
    await writer.close();
    const entries = await parsed();
    expect(entries.map((entry) => [entry.detail, entry.ip])).toEqual([
      [{ reason: 'tfa_required', service: 'imap' }, '192.0.2.10'],
      [{ reason: 'tfa_required', service: 'imap' }, '192.0.2.11'],
      [{ reason: 'rate_limited', service: 'imap', banned_scope: 'ip' }, '192.0.2.10'],
    ]);
  });
});
