// The passdb decision: may this username + password use this mail service now? Plain function
// over deps; never imports hono. Denials are returned, faults (MySQL, Redis, IdP) are thrown.
// mail-login.test.ts tests the decision alone (fakes of the login data and the verifier, no
// limiter); test/passdb.test.ts tests it behind the endpoint over real MySQL and Redis.
//
// Why one file of ~350 lines: the decision reads top to bottom in the order it runs (service,
// login data, limiter, webmail secret, SSO password, candidates, hashes, 2FA, refusals), with the
// request, outcome and deps types its callers share; what stands alone already lives elsewhere
// (services.ts, login-data.ts, sogo-sso-password.ts, passwords/).
import { foldAddress } from '../address.js';
import type { Logger } from '../log.js';
import type { CredentialVerifier } from '../passwords/credential-verifier.js';
import type { HashVerdict } from '../passwords/verify-password-hash.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { AppPasswordRecord } from '../storage/app-passwords.js';
import type { LoginMailbox } from '../storage/mailboxes.js';
import type { SaslLogWriter } from '../storage/sasl-log.js';
import type { LoginData, LoginDataSource } from './login-data.js';
import {
  isKnownService,
  isServiceAllowedForAppPassword,
  isServiceAllowedForMailbox,
  KNOWN_SERVICES,
} from './services.js';
import type { SogoSsoPasswordChecker } from './sogo-sso-password.js';

export interface MailLoginRequest {
  /** As Dovecot sent it; matched exactly after foldAddress (ASCII letters only are case-insensitive). */
  username: string;
  /** Bytes as sent: never trimmed or normalised. */
  password: string;
  /** The client's address as Dovecot saw it. */
  realRip: string;
  /** Canonical service label (see services.ts). */
  service: string;
  /**
   * The caller takes the canonical mailbox name from the answer (our Lua hands it to Dovecot), so
   * a name in an alias domain may log in as its target mailbox. Absent or false: alias-domain
   * names are unknown users, as for mailcow, whose Lua ignores the name in the answer.
   */
  resolveAliasDomains?: boolean;
}

export type DenialReason =
  | 'no_such_mailbox'
  | 'wrong_password'
  | 'no_local_password'
  | 'disabled_upstream'
  | 'unknown_upstream'
  | 'mailbox_inactive'
  | 'domain_inactive'
  | 'service_denied'
  /** A service name postern does not know (services.ts): denied whoever asks. */
  | 'unknown_service'
  /** The mailbox password was right, but the mailbox has 2FA on: only app passwords log in. */
  | 'tfa_required'
  | 'rate_limited';

/** Named after Dovecot's passdb results, so the Lua side is a lookup table. */
export type MailLoginOutcome = (
  | {
      result: 'ok';
      username: string;
      via: 'password' | 'app_password' | 'webmail_session' | 'sogo_sso';
      appPasswordId: number;
    }
  | {
      result: 'password_mismatch' | 'user_unknown' | 'user_disabled';
      reason: DenialReason;
      bannedScope?: 'ip' | 'user';
    }
) & {
  /** The mailbox's auth source (`none` when there is no mailbox), for metrics and logs. */
  source: string;
};

/** Its home is passwords/ (cache/ implements it without importing login/); named here for callers. */
export type { CredentialVerifier };

/**
 * Webmail (SOGo) logs into IMAP with a per-session secret minted by the handoff; it is valid only
 * for its user, from SOGo's addresses, while the web session lives.
 */
export interface WebmailSecretChecker {
  /**
   * Whether `password` is a live webmail secret of `username` presented from `realRip`: `false`
   * at once when it cannot be one (every ordinary login), else the answer of a Redis lookup.
   */
  isWebmailSecret(username: string, password: string, realRip: string): false | Promise<boolean>;
}

export interface MailLoginDeps {
  /** The mailbox and app passwords behind a login name (direct or change-checked copies). */
  loginData: LoginDataSource;
  verifier: CredentialVerifier;
  sources: SourceRegistry;
  log: Logger;
  /** mailcow's last-login table, written in batches. */
  saslLog: SaslLogWriter;
  /** Brute-force protection; absent = no limits (tests of the decision alone). */
  limiter?: RateLimiter;
  webmailSecrets?: WebmailSecretChecker;
  /** mailcow's static SOGo SSO password (POSTERN_SOGO_SSO_PASS_FILE); absent = off. */
  sogoSso?: SogoSsoPasswordChecker;
  /**
   * Hash verifications a login not settled by a remembered success spends at least (dummies fill
   * up), so a wrong password costs the same whether the user is unknown or has a few app
   * passwords (POSTERN_LOGIN_HASH_FLOOR). Absent = 1.
   */
  loginHashFloor?: number;
  /** Told of every denial (audit/login-refusals.ts picks what to record); must not wait or throw. */
  onDenial?: (denial: MailLoginDenial) => void;
}

export interface MailLoginDenial {
  /** The canonical mailbox, when there is one. */
  username: string | undefined;
  service: string;
  realRip: string;
  reason: DenialReason;
  bannedScope?: 'ip' | 'user';
}

interface Candidate {
  hash: string;
  appPassword?: AppPasswordRecord;
}

/**
 * Decide a mail login, with brute-force protection around the decision: a banned client or user
 * is refused before any hash work; denials that mean "wrong secret" are counted, faults never.
 */
export async function checkMailLogin(deps: MailLoginDeps, request: MailLoginRequest): Promise<MailLoginOutcome> {
  // A service postern does not know has no access flags to check, so it opens nothing. The
  // same answer for every user and password, before any lookup or hash: it reveals
  // nothing and is no guess, so it is not counted.
  if (!isKnownService(request.service)) {
    warnUnknownService(deps.log, request.service);
    return { result: 'user_disabled', reason: 'unknown_service', source: 'none' };
  }
  const loginName = foldAddress(request.username);
  const loaded = await deps.loginData.load(loginName);
  const data = loaded.mailbox?.viaAliasDomain && !request.resolveAliasDomains ? NO_MAILBOX : loaded;
  const mailbox = data.mailbox;
  // Count against the canonical mailbox, so alias-domain spellings share one budget.
  const attempt = { ip: request.realRip, username: mailbox?.username ?? loginName };
  if (deps.limiter) {
    const decision = await deps.limiter.check(attempt);
    if (decision.blocked) {
      const { service, realRip } = request;
      deps.onDenial?.({
        username: mailbox?.username,
        service,
        realRip,
        reason: 'rate_limited',
        bannedScope: decision.scope,
      });
      return {
        result: 'password_mismatch',
        reason: 'rate_limited',
        bannedScope: decision.scope,
        source: mailbox?.authSource ?? 'none',
      };
    }
  }
  const outcome = await decide(deps, request, data);
  if (deps.limiter) {
    if (outcome.result === 'ok') await deps.limiter.recordSuccess(attempt);
    else if (COUNTED_DENIALS.has(outcome.reason))
      await deps.limiter.recordFailure({ ...attempt, password: request.password });
  }
  if (outcome.result !== 'ok' && deps.onDenial) {
    deps.onDenial({
      username: mailbox?.username,
      service: request.service,
      realRip: request.realRip,
      reason: outcome.reason,
    });
  }
  return outcome;
}

const NO_MAILBOX: LoginData = { mailbox: undefined, appPasswords: [], hasActiveTfa: false };

/** Service names already warned about; bounded, so a stream of made-up names cannot grow it. */
const warnedServices = new Set<string>();
const MAX_WARNED_SERVICES = 64;

/** One warning per unknown name per process (every request still gets its `passdb` info line). */
function warnUnknownService(log: Logger, service: string): void {
  if (warnedServices.has(service) || warnedServices.size >= MAX_WARNED_SERVICES) return;
  warnedServices.add(service);
  log.warn(
    {
      service,
      known: KNOWN_SERVICES,
      hint:
        service === 'doveadm'
          ? 'doveadm auth test uses service doveadm unless given -x service=imap'
          : service === 'lmtp'
            ? 'LMTP does not authenticate with passwords'
            : undefined,
    },
    'passdb: login for a service postern does not know, denied',
  );
}

/** Denials that mean "this secret is not good here": what a guesser produces. */
const COUNTED_DENIALS = new Set<DenialReason>([
  'no_such_mailbox',
  'wrong_password',
  'no_local_password',
  'unknown_upstream',
  // Counted like a wrong password, so the ban budget does not tell a guesser that this one was
  // right; a mail client retrying the same old password counts once (distinct fingerprints).
  'tfa_required',
]);

async function decide(deps: MailLoginDeps, request: MailLoginRequest, data: LoginData): Promise<MailLoginOutcome> {
  const { mailbox, appPasswords, hasActiveTfa } = data;
  const floor = deps.loginHashFloor ?? 1;
  if (!mailbox) {
    await verifyDummies(deps.verifier, request.password, floor);
    return { result: 'user_unknown', reason: 'no_such_mailbox', source: 'none' };
  }

  const source = mailbox.authSource ?? 'none';
  const webmailSecret = deps.webmailSecrets?.isWebmailSecret(mailbox.username, request.password, request.realRip);
  if (webmailSecret && (await webmailSecret)) {
    // The handoff checked sogo_access when it was minted; the mailbox must still be usable now.
    const refusal = refusalFor(mailbox, 'SOGO');
    if (refusal) return { result: 'user_disabled', reason: refusal, source };
    deps.saslLog.record({ username: mailbox.username, realRip: request.realRip, service: 'SOGO', appPasswordId: 0 });
    return { result: 'ok', username: mailbox.username, via: 'webmail_session', appPasswordId: 0, source };
  }
  const ssoPassword = deps.sogoSso?.isSsoPassword(request.password, request.realRip);
  if (ssoPassword && (await ssoPassword)) {
    // mailcow accepts it for any name; postern still wants a mailbox that may use webmail.
    const refusal = refusalFor(mailbox, 'SOGO');
    if (refusal) return { result: 'user_disabled', reason: refusal, source };
    await deps.sogoSso?.recordUse(mailbox.username, request.realRip);
    deps.saslLog.record({ username: mailbox.username, realRip: request.realRip, service: 'SOGO', appPasswordId: 0 });
    return { result: 'ok', username: mailbox.username, via: 'sogo_sso', appPasswordId: 0, source };
  }
  const lookup = await deps.sources.sourceFor(mailbox).lookupPasswordHash(mailbox);
  // An app password without the flag for this service can never succeed: don't spend a hash on it.
  const candidates: Candidate[] = appPasswords
    .filter((appPassword) => isServiceAllowedForAppPassword(request.service, appPassword.protocols))
    .map((appPassword) => ({ hash: appPassword.passwordHash, appPassword }));
  if (lookup.ok) candidates.push({ hash: lookup.hash });

  if (candidates.length === 0) {
    await verifyDummies(deps.verifier, request.password, floor);
    return { result: 'password_mismatch', reason: lookup.ok ? 'wrong_password' : lookup.reason, source };
  }

  const verdicts = await verifyCandidates(deps.verifier, mailbox.username, candidates, request.password, floor);
  verdicts.forEach((verdict, index) => {
    if (!verdict.ok && verdict.reason !== 'mismatch') {
      const appPasswordId = candidates[index]?.appPassword?.id;
      deps.log.warn(
        { user: mailbox.username, appPasswordId, scheme: verdict.scheme, problem: verdict.reason },
        'stored password hash cannot be verified',
      );
    }
  });
  // mailcow checks app passwords first and the first match wins; keep that order.
  const matchIndex = verdicts.findIndex((verdict) => verdict.ok);
  const match = candidates[matchIndex];
  if (!match) {
    return { result: 'password_mismatch', reason: 'wrong_password', source };
  }

  // mailcow's user_login() refuses an internal (Dovecot) login with the mailbox password once
  // get_tfa() finds an active authenticator: "2FA on" means the password alone opens no mail.
  // Checked after the hash, so the answer and its cost are those of a wrong password.
  if (hasActiveTfa && !match.appPassword) {
    return { result: 'password_mismatch', reason: 'tfa_required', source };
  }

  // Only someone holding a valid password learns that the account is disabled.
  const refusal = refusalFor(mailbox, request.service);
  if (refusal) return { result: 'user_disabled', reason: refusal, source };

  const appPasswordId = match.appPassword?.id ?? 0;
  deps.saslLog.record({
    username: mailbox.username,
    realRip: request.realRip,
    service: request.service,
    appPasswordId,
  });

  return {
    result: 'ok',
    username: mailbox.username,
    via: match.appPassword ? 'app_password' : 'password',
    appPasswordId,
    source,
  };
}

/**
 * A remembered success on any candidate settles it without hashing the others (a mailbox with ten
 * app passwords would otherwise pay nine failing hashes on every login). Otherwise all candidates
 * at once, padded with dummy verifications up to `floor`: the hash pool spreads them over the
 * cores, and a wrong password costs the same for one candidate as for `floor` of them.
 */
async function verifyCandidates(
  verifier: CredentialVerifier,
  username: string,
  candidates: Candidate[],
  password: string,
  floor: number,
): Promise<HashVerdict[]> {
  const padding = Math.max(0, floor - candidates.length);
  if (verifier.findCached && (candidates.length > 1 || padding > 0)) {
    const cached = await verifier.findCached(
      username,
      password,
      candidates.map((candidate) => candidate.hash),
    );
    if (cached) return candidates.map((_, index) => (index === cached.index ? cached.verdict : MISMATCH));
  }
  const [verdicts] = await Promise.all([
    Promise.all(candidates.map((candidate) => verifier.verify(username, candidate.hash, password))),
    verifyDummies(verifier, password, padding),
  ]);
  return verdicts;
}

/** `count` dummy verifications at once: the time of that many real ones, nobody can match them. */
async function verifyDummies(verifier: CredentialVerifier, password: string, count: number): Promise<void> {
  if (count === 1) return verifier.verifyDummy(password);
  await Promise.all(Array.from({ length: count }, () => verifier.verifyDummy(password)));
}

const MISMATCH: HashVerdict = { ok: false, reason: 'mismatch' };

function refusalFor(mailbox: LoginMailbox, service: string): DenialReason | undefined {
  // active = 2 means "receives mail, no login" in mailcow.
  if (mailbox.active !== 1) return 'mailbox_inactive';
  if (!mailbox.domainActive) return 'domain_inactive';
  if (!isServiceAllowedForMailbox(service, mailbox.attributes)) return 'service_denied';
  return undefined;
}
