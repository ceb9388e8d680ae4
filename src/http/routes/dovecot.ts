// POST / and POST /dovecot/passdb: Dovecot's Lua passdb (ours or mailcow's) asks whether a
// login is good. 200 success, 401 denial, 5xx fault (never a denial), 400 malformed.
import { isIP } from 'node:net';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { AppError, isLoggedOutage } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  checkMailLogin,
  type MailLoginDeps,
  type MailLoginOutcome,
  type MailLoginRequest,
} from '../../login/mail-login.js';
import { canonicalService } from '../../login/services.js';
import { readBodyText } from '../read-body.js';

const serviceName = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a service name such as imap, pop3, smtp, submission, sieve');

const passdbBody = z
  .object({
    username: z
      .string()
      .min(1, 'must not be empty')
      .max(255)
      // No login name has them, and they forge what a log line or an admin page shows: white space,
      // every control character (C0, DEL, C1), format characters (bidi overrides and isolates such
      // as U+202E, zero-width characters) and unpaired surrogates.
      .regex(/^[^\s\p{Cc}\p{Cf}\p{Cs}]+$/u, 'must not contain spaces, control or format characters'),
    password: z.string().max(4096),
    real_rip: z.string().refine((value) => isIP(value) !== 0, 'must be an IP address'),
    service: serviceName.optional(),
    // mailcow 2025-03 sent {"protocol": {"imap": true}} instead of a service string.
    protocol: z.record(serviceName, z.literal(true)).optional(),
    // Sent by our Lua, which hands the answer's canonical `username` to Dovecot. mailcow's Lua
    // does not send it (and ignores that field): alias-domain names are then unknown users.
    resolve_alias_domains: z.boolean().optional(),
  })
  .transform((body, ctx) => {
    const fromProtocol = body.protocol ? Object.keys(body.protocol) : [];
    if (body.service === undefined && fromProtocol.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['service'], message: 'required (or protocol with exactly one service)' });
      return z.NEVER;
    }
    const service = canonicalService(body.service ?? (fromProtocol[0] as string));
    return {
      username: body.username,
      password: body.password,
      realRip: body.real_rip,
      service,
      resolveAliasDomains: body.resolve_alias_domains === true,
    };
  });

export type PasswordDbObserver = (event: {
  service: string;
  source: string;
  outcome: MailLoginOutcome | { result: 'internal_failure' };
  seconds: number;
}) => void;

export type PassdbReply =
  | { status: 200; body: { success: true; result: 'ok'; username: string } }
  | { status: 401; body: { success: false; result: Exclude<MailLoginOutcome['result'], 'ok'> } };

/**
 * The passdb endpoint without its HTTP framing, shared by the hono route (tests, embedding) and
 * the listener's fast path (passdb-fast-path.ts). Bad requests and faults are thrown as AppErrors.
 */
export interface PassdbEndpoint {
  maxBodyBytes: number;
  /** Refuses a body not declared as JSON, before it is read. */
  checkContentType(contentType: string | undefined): void;
  answer(bodyText: string): Promise<PassdbReply>;
}

export function createPassdbEndpoint(
  deps: MailLoginDeps & { log: Logger; maxBodyBytes: number; observe?: PasswordDbObserver },
): PassdbEndpoint {
  return {
    maxBodyBytes: deps.maxBodyBytes,
    checkContentType(contentType) {
      if (!contentType?.toLowerCase().startsWith('application/json')) {
        throw new AppError('bad_request', 'Content-Type must be application/json');
      }
    },
    async answer(bodyText) {
      const request = parsePassdbRequest(bodyText);
      const started = performance.now();
      let outcome: MailLoginOutcome;
      try {
        outcome = await checkMailLogin(deps, request);
      } catch (error) {
        const seconds = (performance.now() - started) / 1000;
        deps.observe?.({
          service: request.service,
          source: 'unknown',
          outcome: { result: 'internal_failure' },
          seconds,
        });
        // An auth event like any other login's (info) when the outage is logged where it was found.
        deps.log[isLoggedOutage(error) ? 'info' : 'warn'](
          {
            event: 'auth',
            user: request.username,
            service: request.service,
            rip: request.realRip,
            result: 'internal_failure',
            ms: Math.round(seconds * 1000),
          },
          'passdb check failed temporarily',
        );
        throw error;
      }
      const seconds = (performance.now() - started) / 1000;
      deps.observe?.({ service: request.service, source: outcome.source, outcome, seconds });
      // Built only when it will be written: this runs on every login.
      if (deps.log.isLevelEnabled('info')) {
        deps.log.info(
          {
            event: 'auth',
            user: request.username,
            service: request.service,
            rip: request.realRip,
            result: outcome.result,
            ...(outcome.result === 'ok'
              ? { via: outcome.via, appPasswordId: outcome.appPasswordId || undefined }
              : { reason: outcome.reason }),
            ms: Math.round(seconds * 1000),
          },
          'passdb',
        );
      }
      if (outcome.result === 'ok') {
        return { status: 200, body: { success: true, result: 'ok', username: outcome.username } };
      }
      return { status: 401, body: { success: false, result: outcome.result } };
    },
  };
}

function parsePassdbRequest(bodyText: string): MailLoginRequest {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    throw new AppError('bad_request', 'body is not valid JSON');
  }
  const parsed = passdbBody.safeParse(json);
  if (!parsed.success) {
    const message = parsed.error.issues
      .map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`)
      .join('; ');
    throw new AppError('bad_request', message);
  }
  return parsed.data;
}

/** POST / and POST /dovecot/passdb as hono routes (the listener answers them before hono does). */
export function createDovecotRoutes(endpoint: PassdbEndpoint) {
  const app = new Hono();
  const handler = async (c: Context) => {
    endpoint.checkContentType(c.req.header('content-type'));
    const { status, body } = await endpoint.answer(await readBodyText(c, endpoint.maxBodyBytes));
    return c.json(body, status);
  };
  app.post('/', handler);
  app.post('/dovecot/passdb', handler);
  return app;
}
