// Which refused mail logins go to the audit trail: those refused for a reason other than a wrong
// secret — a disabled mailbox or domain, a service the mailbox may not use, mailcow's 2FA rule
// (the right mailbox password while an authenticator is active), a ban. Wrong passwords and
// unknown users stay in the metrics and the log, and successes in sasl_log, so the passdb never
// writes a row per login. Entries are queued (audit-writer.ts), never awaited, and throttled: one
// row per (reason, mailbox, client, service) per window, one per banned subject.
import type { DenialReason, MailLoginDenial } from '../login/mail-login.js';
import type { AuditWriter } from './audit-writer.js';

export const AUDITED_DENIALS: ReadonlySet<DenialReason> = new Set<DenialReason>([
  'mailbox_inactive',
  'domain_inactive',
  'service_denied',
  'disabled_upstream',
  'tfa_required',
  'rate_limited',
]);

export function createLoginRefusalAudit(writer: Pick<AuditWriter, 'record'>): (denial: MailLoginDenial) => void {
  return (denial) => {
    if (!AUDITED_DENIALS.has(denial.reason)) return;
    // A ban refuses every name from an IP: one row per banned subject, not per name tried.
    const throttleKey =
      denial.reason === 'rate_limited'
        ? `mail_login:banned:${denial.bannedScope}:${denial.bannedScope === 'ip' ? denial.realRip : denial.username}`
        : `mail_login:${denial.reason}:${denial.username}:${denial.realRip}:${denial.service}`;
    writer.record(
      {
        actor: { kind: 'mailbox', name: denial.username ?? 'unknown' },
        action: 'mail_login.refused',
        ...(denial.username ? { target: denial.username } : {}),
        detail: {
          reason: denial.reason,
          service: denial.service,
          ...(denial.bannedScope ? { banned_scope: denial.bannedScope } : {}),
        },
        ip: denial.realRip,
      },
      { throttleKey },
    );
  };
}
