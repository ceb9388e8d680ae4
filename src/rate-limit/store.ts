// What a limiter backend must do; Redis (shared by replicas) and in-process memory (the fallback
// while Redis is away) implement the same semantics, so a test table can run against both.

export type Scope = 'ip' | 'user';

export interface Ban {
  scope: Scope;
  subject: string;
  expiresInSeconds: number;
}

/** Who an attempt is counted against. `ip` is absent when the address is exempt or unparseable. */
export interface Subjects {
  user: string;
  ip?: string | undefined;
}

export interface StoreSnapshot {
  /** Remaining ban time in ms, 0 when not banned. */
  ipBanMs: number;
  userBanMs: number;
  isKnownGoodIp: boolean;
}

export interface StoreLimits {
  ipThreshold: number;
  userThreshold: number;
  windowMs: number;
  banMs: number;
  knownGoodIpMs: number;
}

export interface LimiterStore {
  snapshot(subjects: Subjects, nowMs: number): Promise<StoreSnapshot>;
  /** Counts `fingerprint` once per window per scope; returns the scopes banned by this very call. */
  recordFailure(subjects: Subjects, fingerprint: string, nowMs: number): Promise<Scope[]>;
  /** Marks subjects.ip known-good for the user; never clears the user's failure count. */
  recordSuccess(subjects: Subjects, nowMs: number): Promise<void>;
  listBans(nowMs: number): Promise<Ban[]>;
  liftBan(scope: Scope, subject: string): Promise<boolean>;
}
