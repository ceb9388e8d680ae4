// The one error type for faults. Denials (wrong password, unknown user, ...) are returned
// values, never AppErrors: only what the caller may retry or must fix is thrown.

const statusByCode = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  /** A backend (MySQL, Redis, an IdP) could not answer: temporary, never a denial. */
  backend_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof statusByCode;

export class AppError extends Error {
  readonly status: number;
  /** For backend_unavailable from toBackendFault: which backend ("MySQL", "Redis"). */
  backend?: string;

  /**
   * @param message shown to the caller when `expose` is true; keep secrets out of it.
   * @param options.cause the underlying error, logged but never rendered.
   */
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.status = statusByCode[code];
  }

  /** Client errors describe themselves; server faults are logged, not described. */
  get expose(): boolean {
    return this.status < 500;
  }
}

/**
 * Backends whose outages are logged where they are detected (storage/outage-log.ts for MySQL, the
 * Redis client's transitions in deps.ts), so a request failing for one adds no line of its own.
 */
export function isLoggedOutage(error: unknown): boolean {
  return (
    error instanceof AppError &&
    error.code === 'backend_unavailable' &&
    (error.backend === 'MySQL' || error.backend === 'Redis')
  );
}

/** Wrap whatever a backend threw as a temporary fault, keeping it as the cause. */
export function toBackendFault(backend: string, cause: unknown): AppError {
  if (cause instanceof AppError) return cause;
  const fault = new AppError('backend_unavailable', `${backend} unavailable`, { cause });
  fault.backend = backend;
  return fault;
}
