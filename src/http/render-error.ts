// The one place errors become HTTP responses, and each app's one onError (renderAppError).
// Faults are logged with their cause and rendered without detail; client errors say what was
// wrong. APIs get the JSON envelope; requests that a route area marked as pages (pageErrors)
// get an HTML page, by default the plain message page. Secrets never reach either.
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, isLoggedOutage } from '../errors.js';
import type { Logger } from '../log.js';
import { renderRefusal } from './refusal-page.js';

export interface ErrorReply {
  status: ContentfulStatusCode;
  body: { success: false; result?: 'internal_failure'; error: { code: string; message: string } };
}

/** How a route area shows an error page; the error is already logged and the page not cacheable. */
export type ErrorPage = (c: Context, error: AppError) => Response | Promise<Response>;

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by pageErrors(): this request is a browser page, its errors render through this. */
    errorPage: ErrorPage;
  }
}

/** The error as an AppError, logged as it deserves. */
function logError(error: unknown, path: string, log: Logger): AppError {
  const appError = error instanceof AppError ? error : new AppError('internal', 'internal error', { cause: error });
  if (appError.expose) {
    log.debug({ code: appError.code, path }, appError.message);
  } else if (isLoggedOutage(appError)) {
    // The outage itself is logged once where it is detected; one line per request would flood.
    log.debug({ code: appError.code, path }, appError.message);
  } else {
    log.error({ err: appError.cause ?? appError, code: appError.code, path }, appError.message);
  }
  return appError;
}

/** The status and JSON body for an error on `path`, logged as it deserves. */
export function errorReply(error: unknown, path: string, log: Logger): ErrorReply {
  const appError = logError(error, path, log);
  return {
    status: appError.status as ContentfulStatusCode,
    body: {
      success: false,
      ...(appError.status >= 500 ? { result: 'internal_failure' as const } : {}),
      error: { code: appError.code, message: appError.expose ? appError.message : publicFaultMessage(appError) },
    },
  };
}

/** The JSON envelope. */
export function renderError(error: unknown, c: Context, log: Logger): Response {
  const { status, body } = errorReply(error, c.req.path, log);
  return c.json(body, status);
}

/**
 * Browser pages get an HTML page for faults too (MySQL or Redis away), not the JSON envelope the
 * APIs use; the detail goes to the log only.
 */
export function renderPageError(error: unknown, c: Context, log: Logger, page: ErrorPage = messagePage) {
  const appError = logError(error, c.req.path, log);
  c.header('cache-control', 'no-store');
  return page(c, appError);
}

/** The onError of an app: an HTML page for requests marked by pageErrors(), JSON for the rest. */
export function renderAppError(error: unknown, c: Context, log: Logger): Response | Promise<Response> {
  const page = c.get('errorPage');
  return page ? renderPageError(error, c, log, page) : renderError(error, c, log);
}

/** Marks the requests it runs for as browser pages, whose errors render through `page`. */
export function pageErrors(page: ErrorPage = messagePage): MiddlewareHandler {
  return async (c, next) => {
    c.set('errorPage', page);
    await next();
  };
}

/**
 * A route area of browser pages: every path it serves is marked with pageErrors(page) before its
 * own handlers run, so its errors are pages while the APIs mounted beside it keep JSON.
 */
export function pageArea(area: Hono, page: ErrorPage = messagePage): Hono {
  const marked = new Hono();
  for (const path of new Set(area.routes.map((route) => route.path))) marked.use(path, pageErrors(page));
  return marked.route('/', area);
}

/** The plain page: what was refused, or that the service is briefly unavailable. */
const messagePage: ErrorPage = (c, error) =>
  renderRefusal(
    c,
    {
      status: error.status as ContentfulStatusCode,
      title: error.expose ? 'Request refused' : 'Temporarily unavailable',
      message: error.expose ? error.message : 'The service is temporarily unavailable. Please try again in a moment.',
    },
    { href: '/', label: 'Back' },
  );

function publicFaultMessage(error: AppError): string {
  // "MySQL unavailable" tells an operator where to look and an attacker nothing new.
  return error.code === 'backend_unavailable' ? error.message : 'internal error';
}
