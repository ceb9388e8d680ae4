// One set of narrow deps for every mail login, wherever it arrives: Dovecot's passdb (the
// internal listener and its fast path) and SOGo's DAV/EAS clients (/sogo/verify). Both get the
// same limiter, webmail-secret and SOGo SSO checkers, refusal audit and metrics.
import { createLoginRefusalAudit } from '../audit/login-refusals.js';
import type { LoginStats } from '../cache/login-stats.js';
import type { Deps } from '../deps.js';
import {
  checkMailLogin,
  type MailLoginDenial,
  type MailLoginDeps,
  type MailLoginOutcome,
  type MailLoginRequest,
} from '../login/mail-login.js';
import type { PasswordDbObserver } from './routes/dovecot.js';

export type ObservedMailLoginDeps = MailLoginDeps & { observe: PasswordDbObserver };

export function mailLoginDepsOf(deps: Deps): ObservedMailLoginDeps {
  return {
    loginData: deps.loginData,
    verifier: deps.verifier,
    limiter: deps.limiter,
    saslLog: deps.saslLog,
    sources: deps.sources,
    log: deps.log,
    webmailSecrets: deps.webmailSecrets,
    ...(deps.sogoSso ? { sogoSso: deps.sogoSso } : {}),
    loginHashFloor: deps.config.loginHashFloor,
    onDenial: countedDenial(createLoginRefusalAudit(deps.auditWriter), deps.loginStats),
    observe: ({ service, source, outcome, seconds }) => {
      deps.metrics.observeAuth(service, source, outcome.result, seconds);
      if ('bannedScope' in outcome && outcome.bannedScope) deps.metrics.rateLimited.inc({ scope: outcome.bannedScope });
    },
  };
}

/** Every refusal counts in the dashboard's hourly stats; the audit picks its own. Neither waits. */
function countedDenial(
  audit: (denial: MailLoginDenial) => void,
  stats: Pick<LoginStats, 'recordFailure'>,
): (denial: MailLoginDenial) => void {
  return (denial) => {
    stats.recordFailure(denial.service);
    audit(denial);
  };
}

/** checkMailLogin, counted in the metrics as the passdb endpoint counts its logins (faults included). */
export async function checkObservedMailLogin(
  deps: ObservedMailLoginDeps,
  request: MailLoginRequest,
): Promise<MailLoginOutcome> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    const outcome = await checkMailLogin(deps, request);
    deps.observe({ service: request.service, source: outcome.source, outcome, seconds: seconds() });
    return outcome;
  } catch (error) {
    deps.observe({
      service: request.service,
      source: 'unknown',
      outcome: { result: 'internal_failure' },
      seconds: seconds(),
    });
    throw error;
  }
}
