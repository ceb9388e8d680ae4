// mailcow's static SOGo SSO password (opt-in, POSTERN_SOGO_SSO_PASS_FILE): mailcow's SOGo logs
// into IMAP as any user with the contents of `sogo-sso.pass`, and mailcowauth.php accepts it when
// the request comes from SOGo's address (data/conf/dovecot/auth/mailcowauth.php: `$isSOGoRequest`,
// `file_get_contents("/etc/sogo-sso/sogo-sso.pass") === $post['password']`). It lets a mailcow
// admin replace the passdb first and switch webmail to postern's per-session handoff later.
// Owns: reading the file, the address rule, the comparison, the audit trail. Must not: accept it
// from any other address, log it, or keep it longer than one check.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { createNetworkList, parseClientAddress } from '../rate-limit/client-address.js';
import { type AuditEntry, systemActor } from '../storage/audit.js';

export interface SogoSsoPasswordChecker {
  /**
   * Whether `password` is the SSO password presented from SOGo's networks: `false` at once when
   * the address is not SOGo's (every ordinary login), else the comparison with the file's
   * current contents. Throws a temporary fault when the configured file cannot be read.
   */
  isSsoPassword(password: string, realRip: string): false | Promise<boolean>;
  /** Audit one accepted use (at most one row per mailbox and address per AUDIT_INTERVAL_MS). */
  recordUse(username: string, realRip: string): Promise<void>;
}

/** SOGo opens an IMAP connection for nearly every request: one audit row per 10 minutes of use. */
const AUDIT_INTERVAL_MS = 10 * 60 * 1000;
const MAX_AUDIT_MEMORY = 10_000;

export function createSogoSsoPasswordChecker(deps: {
  path: string;
  sogoNetworks: string[];
  log: Logger;
  audit: (entry: AuditEntry) => Promise<void>;
  now?: () => number;
}): SogoSsoPasswordChecker {
  const isSogoAddress = createNetworkList(deps.sogoNetworks);
  const now = deps.now ?? Date.now;
  const lastAudit = new Map<string, number>();
  let warnedEmpty = false;

  async function matches(password: string): Promise<boolean> {
    let contents: Buffer;
    try {
      contents = await readFile(deps.path);
    } catch (error) {
      throw new AppError('backend_unavailable', 'SOGo SSO password file unreadable', { cause: error });
    }
    if (contents.length === 0) {
      if (!warnedEmpty) deps.log.warn({ path: deps.path }, 'POSTERN_SOGO_SSO_PASS_FILE is empty: accepting nothing');
      warnedEmpty = true;
      return false;
    }
    warnedEmpty = false;
    // Byte for byte as PHP's === on file_get_contents (no trimming); digests make the comparison
    // constant-time whatever the lengths.
    const expected = createHash('sha256').update(contents).digest();
    const given = createHash('sha256').update(password, 'utf8').digest();
    return timingSafeEqual(expected, given);
  }

  return {
    isSsoPassword(password, realRip) {
      if (password.length === 0) return false;
      const address = parseClientAddress(realRip);
      if (!address || !isSogoAddress(address)) return false;
      return matches(password);
    },
    async recordUse(username, realRip) {
      const key = `${username}\u0000${realRip}`;
      const at = now();
      const last = lastAudit.get(key);
      if (last !== undefined && at - last < AUDIT_INTERVAL_MS) return;
      await deps.audit({ actor: systemActor('sogo-sso'), action: 'sogo_sso.login', target: username, ip: realRip });
      lastAudit.delete(key);
      lastAudit.set(key, at);
      if (lastAudit.size > MAX_AUDIT_MEMORY) {
        const oldest = lastAudit.keys().next().value;
        if (oldest !== undefined) lastAudit.delete(oldest);
      }
    },
  };
}
