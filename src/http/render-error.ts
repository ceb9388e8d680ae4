// The one place errors become HTTP responses. Faults are logged with their cause and rendered
// without detail; client errors say what was wrong. Secrets never reach either.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, isLoggedOutage } from '../errors.js';
import type { Logger } from '../log.js';

export interface ErrorReply {
  status: ContentfulStatusCode;
  body: { success: false; result?: 'internal_failure'; error: { code: string; message: string } };
}

/** The status and JSON body for an error on `path`, logged as it deserves. */
export function errorReply(error: unknown, path: string, log: Logger): ErrorReply {
  const appError = error instanceof AppError ? error : new AppError('internal', 'internal error', { cause: error });
  if (appError.expose) {
    log.debug({ code: appError.code, path }, appError.message);
  } else if (isLoggedOutage(appError)) {
    // The outage itself is logged once where it is detected; one line per request would flood.
    log.debug({ code: appError.code, path }, appError.message);
  } else {
    log.error({ err: appError.cause ?? appError, code: appError.code, path }, appError.message);
  }
  return {
    status: appError.status as ContentfulStatusCode,
    body: {
      success: false,
      ...(appError.status >= 500 ? { result: 'internal_failure' as const } : {}),
      error: { code: appError.code, message: appError.expose ? appError.message : publicFaultMessage(appError) },
    },
  };
}

export function renderError(error: unknown, c: Context, log: Logger): Response {
  const { status, body } = errorReply(error, c.req.path, log);
  return c.json(body, status);
}

function publicFaultMessage(error: AppError): string {
  // "MySQL unavailable" tells an operator where to look and an attacker nothing new.
  return error.code === 'backend_unavailable' ? error.message : 'internal error';
}
