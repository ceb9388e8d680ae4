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
  mailboxAttribute?: string;
  /** Column of app_passwd that must be 1; `any` = every active app password works. */
  appPasswordFlag: AppPasswordProtocol | 'any' | 'none';
}

const RULES: Record<string, AccessRule> = {
  imap: { mailboxAttribute: 'imap_access', appPasswordFlag: 'imap_access' },
  pop3: { mailboxAttribute: 'pop3_access', appPasswordFlag: 'pop3_access' },
  // Postfix asks through Dovecot SASL as "smtp"; Dovecot's submission service says "submission".
  smtp: { mailboxAttribute: 'smtp_access', appPasswordFlag: 'smtp_access' },
  submission: { mailboxAttribute: 'smtp_access', appPasswordFlag: 'smtp_access' },
  sieve: { mailboxAttribute: 'sieve_access', appPasswordFlag: 'sieve_access' },
  managesieve: { mailboxAttribute: 'sieve_access', appPasswordFlag: 'sieve_access' },
  DAV: { mailboxAttribute: 'dav_access', appPasswordFlag: 'dav_access' },
  EAS: { mailboxAttribute: 'eas_access', appPasswordFlag: 'eas_access' },
  // SOGo opens IMAP for a user already admitted to webmail; mailcow (since 2025-05) accepts any
  // active app password there, whatever its protocol flags.
  SOGO: { mailboxAttribute: 'sogo_access', appPasswordFlag: 'any' },
};

/** Services we do not know get no app passwords: a new protocol must be granted explicitly. */
const UNKNOWN_SERVICE: AccessRule = { appPasswordFlag: 'none' };

export function accessRuleFor(service: string): AccessRule {
  return RULES[service] ?? UNKNOWN_SERVICE;
}

/** mailcow's rule: the attribute blocks only when present and not "1" (loosely compared). */
export function isServiceAllowedForMailbox(service: string, attributes: Record<string, unknown>): boolean {
  const attribute = accessRuleFor(service).mailboxAttribute;
  if (!attribute || !(attribute in attributes)) return true;
  const value = attributes[attribute];
  return value === '1' || value === 1 || value === true;
}

export function isServiceAllowedForAppPassword(
  service: string,
  protocols: Record<AppPasswordProtocol, boolean>,
): boolean {
  const flag = accessRuleFor(service).appPasswordFlag;
  if (flag === 'any') return true;
  if (flag === 'none') return false;
  return protocols[flag];
}
