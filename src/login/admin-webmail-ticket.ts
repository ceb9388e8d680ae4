// An admin's link into a mailbox's webmail (POSTERN_ADMIN_WEBMAIL): minted by the admin API,
// used once from a browser, valid as long as a handoff. Redis keeps only the ticket's digest;
// both steps are audited with the admin as actor.
import { foldAddress } from '../address.js';
import { keys } from '../cache/keys.js';
import type { Redis } from '../cache/redis.js';
import type { Config } from '../config/schema.js';
import { sha256Hex } from '../digest.js';
import { parseJsonRecord } from '../json-record.js';
import type { Logger } from '../log.js';
import { mailboxActor, recordAudit } from '../storage/audit.js';
import { callerAuditActor } from '../storage/audit-actors.js';
import type { Db } from '../storage/db.js';
import {
  checkWebmailAccess,
  inRedis,
  isWebmailToken,
  newWebmailToken,
  WEBMAIL_REFUSALS,
  type WebmailAccessRefusal,
} from './webmail-access.js';

export type AdminTicketOutcome =
  | { ok: true; ticket: string; ttlSeconds: number }
  | { ok: false; reason: WebmailAccessRefusal; message: string };

export type AdminTicketRedemption =
  | { ok: true; username: string; actingAdmin: string }
  | { ok: false; reason: 'ticket_malformed' | 'ticket_unknown' | WebmailAccessRefusal };

interface AdminTicketRecord {
  username: string;
  actingAdmin: string;
}

export interface AdminWebmailTickets {
  /** Admin API: a single-use link that opens `username`'s webmail. */
  mint(input: { username: string; actingAdmin: string; ip?: string }): Promise<AdminTicketOutcome>;
  /** The link opened in a browser: consumed whatever the outcome, audited either way. */
  redeem(input: { ticket: string; ip?: string }): Promise<AdminTicketRedemption>;
}

export interface AdminWebmailTicketDeps {
  db: Db;
  redis: Redis;
  log: Logger;
  config: Pick<Config, 'redisPrefix'>;
}

export function createAdminWebmailTickets(deps: AdminWebmailTicketDeps, ttlSeconds: number): AdminWebmailTickets {
  const ks = { prefix: deps.config.redisPrefix };
  return {
    async mint({ username, actingAdmin, ip }) {
      const target = foldAddress(username);
      const reason = await checkWebmailAccess(deps.db, target);
      if (reason) {
        await recordAudit(deps.db, {
          actor: await callerAuditActor(deps.db, actingAdmin),
          action: 'sogo.admin_link.refused',
          target,
          detail: { reason },
          ...(ip ? { ip } : {}),
        });
        return { ok: false, reason, message: WEBMAIL_REFUSALS[reason].message };
      }
      const ticket = newWebmailToken();
      const record: AdminTicketRecord = { username: target, actingAdmin };
      await inRedis(() =>
        deps.redis.set(keys.adminWebmailTicket(ks, sha256Hex(ticket)), JSON.stringify(record), 'EX', ttlSeconds),
      );
      await recordAudit(deps.db, {
        actor: await callerAuditActor(deps.db, actingAdmin),
        action: 'sogo.admin_link',
        target,
        ...(ip ? { ip } : {}),
      });
      return { ok: true, ticket, ttlSeconds };
    },

    async redeem({ ticket, ip }) {
      const refuse = async (reason: Exclude<AdminTicketRedemption, { ok: true }>['reason'], actingAdmin?: string) => {
        await recordAudit(deps.db, {
          actor: actingAdmin ? await callerAuditActor(deps.db, actingAdmin) : mailboxActor('anonymous'),
          action: 'sogo.admin_login.refused',
          detail: { reason },
          ...(ip ? { ip } : {}),
        });
        return { ok: false, reason } as const;
      };
      if (!isWebmailToken(ticket)) return refuse('ticket_malformed');
      const text = await inRedis(() => deps.redis.getdel(keys.adminWebmailTicket(ks, sha256Hex(ticket))));
      const record = parseJsonRecord<AdminTicketRecord>(
        text,
        (v) => typeof v.username === 'string' && typeof v.actingAdmin === 'string',
      );
      if (!record) return refuse('ticket_unknown');
      // The mailbox may have been switched off between the link and its use.
      const reason = await checkWebmailAccess(deps.db, record.username);
      if (reason) return refuse(reason, record.actingAdmin);
      await recordAudit(deps.db, {
        actor: await callerAuditActor(deps.db, record.actingAdmin),
        action: 'sogo.admin_login',
        target: record.username,
        ...(ip ? { ip } : {}),
      });
      deps.log.info(
        { event: 'sogo', result: 'admin_login', user: record.username, admin: record.actingAdmin },
        'admin opened a mailbox',
      );
      return { ok: true, username: record.username, actingAdmin: record.actingAdmin };
    },
  };
}
