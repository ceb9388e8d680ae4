// Service labels as Dovecot and mailcow write them, and which access flag governs each.
import type { AppPasswordProtocol } from '../storage/app-passwords.js';

/** Labels mailcow writes in upper case: webmail, DAV, ActiveSync and the SSO handoff. */
const UPPER_CASE_LABELS = new Set(['SOGO', 'DAV', 'EAS', 'SSO', 'NONE']);

/** Dovecot's lower-case service name, or mailcow's upper-case label for the web services. */
export function canonicalService(raw: string): string {
  const upper = raw.toUpperCase();
  return UPPER_CASE_LABELS.has(upper) ? upper : raw.toLowerCase();
}

interface AccessRule {
  /** Key of mailbox.attributes that must not be "0" (a missing key allows, as in mailcow). */
  mailboxAttribute: string;
  /** Column of app_passwd that must be 1. */
  appPasswordFlag: AppPasswordProtocol;
}

/**
 * Every service a password login may name, and nothing else: Dovecot's own
 * service names as its Lua passdb receives them (`%s`: imap, pop3, submission, sieve; imaps and
 * pop3s are still imap and pop3 to Dovecot), Postfix's SASL requests through Dovecot (`smtp`),
 * and the labels of the web side (SOGo's IMAP logins, DAV, ActiveSync). A Map, not an object
 * literal: a name from the request must never find `constructor` or `__proto__`.
 *
 * Not here, so denied: `lmtp` (Dovecot's LMTP never authenticates with a password; its proxy
 * lookups carry none), `doveadm` (`doveadm auth test` without `-x service=imap`), mailcow's
 * `NONE` (its OAuth2 password grant, "no protocol check") and `SSO` (the handoff's sasl_log label).
 */
const RULES = new Map<string, AccessRule>([
  ['imap', { mailboxAttribute: 'imap_access', appPasswordFlag: 'imap_access' }],
  ['pop3', { mailboxAttribute: 'pop3_access', appPasswordFlag: 'pop3_access' }],
  // Postfix asks through Dovecot SASL as "smtp"; Dovecot's submission service says "submission".
  ['smtp', { mailboxAttribute: 'smtp_access', appPasswordFlag: 'smtp_access' }],
  ['submission', { mailboxAttribute: 'smtp_access', appPasswordFlag: 'smtp_access' }],
  // Dovecot's ManageSieve service authenticates as "sieve"; "managesieve" is accepted for callers
  // that spell the protocol out.
  ['sieve', { mailboxAttribute: 'sieve_access', appPasswordFlag: 'sieve_access' }],
  ['managesieve', { mailboxAttribute: 'sieve_access', appPasswordFlag: 'sieve_access' }],
  ['DAV', { mailboxAttribute: 'dav_access', appPasswordFlag: 'dav_access' }],
  ['EAS', { mailboxAttribute: 'eas_access', appPasswordFlag: 'eas_access' }],
  // SOGo opens IMAP for a user admitted to webmail (sogo_access). An app password used there is
  // used for IMAP, so it needs imap_access, as in mailcow 2025-03b. mailcow 2025-05 and later
  // ignore the flags on SOGo's logins (mailcowauth.php sets service NONE for SOGo's address), which
  // lets an app password made for CalDAV alone read all mail: postern does not follow that.
  ['SOGO', { mailboxAttribute: 'sogo_access', appPasswordFlag: 'imap_access' }],
]);

/** The services postern decides logins for (canonical labels), e.g. for log lines and metrics. */
export const KNOWN_SERVICES: readonly string[] = [...RULES.keys()];

/** Whether postern knows this canonical service label; every other one is denied. */
export function isKnownService(service: string): boolean {
  return RULES.has(service);
}

/** mailcow's rule: the attribute blocks only when present and not "1" (loosely compared). */
export function isServiceAllowedForMailbox(service: string, attributes: Record<string, unknown>): boolean {
  const rule = RULES.get(service);
  if (!rule) return false;
  // Own properties only: a parsed JSON object has no others, but a name must never reach the prototype.
  if (!Object.hasOwn(attributes, rule.mailboxAttribute)) return true;
  const value = attributes[rule.mailboxAttribute];
  return value === '1' || value === 1 || value === true;
}

export function isServiceAllowedForAppPassword(
  service: string,
  protocols: Record<AppPasswordProtocol, boolean>,
): boolean {
  const rule = RULES.get(service);
  return rule !== undefined && protocols[rule.appPasswordFlag] === true;
}
