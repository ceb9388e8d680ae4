// The worker-thread pool for password hashing: bcrypt, argon2 and the crypt family run here so
// the event loop keeps serving while they compute. Verdicts come from verify-password-hash.ts.
import { Piscina } from 'piscina';
import type { NewHashScheme } from './hash-password.js';
import type { HashTask } from './hash-worker.js';
import { MAX_BCRYPT_COST, MIN_BCRYPT_COST } from './schemes/bcrypt.js';
import type { BcryptImpl } from './schemes/index.js';
import { type HashVerdict, isExpensiveScheme, verifyPasswordHash } from './verify-password-hash.js';

export interface HashPool {
  /** Cheap schemes are checked inline; a rejection means a worker failed (a fault, not a denial). */
  verify(stored: string, candidate: string): Promise<HashVerdict>;
  hash(password: string, scheme: NewHashScheme): Promise<string>;
  /** Tasks waiting for a free thread. */
  readonly queueDepth: number;
  readonly threads: number;
  close(): Promise<void>;
}

export interface HashPoolOptions {
  threads: number;
  allowPlaintext: boolean;
  /** Cost of new BLF-CRYPT hashes, 4 to 16. */
  bcryptCost: number;
  bcryptImpl: BcryptImpl;
}

/**
 * Flags a worker may inherit. The parent's may include loaders (tsx's, which cannot serve a
 * worker on Node 20) and debugger or profiler switches that workers reject.
 */
function isInheritableFlag(flag: string): boolean {
  return (
    flag === '--enable-source-maps' ||
    flag === '--no-warnings' ||
    flag.startsWith('--conditions=') ||
    flag.startsWith('--experimental-') ||
    flag.startsWith('--no-experimental-')
  );
}

/**
 * Running from source (tsx, vitest) the worker is a .ts file, which a plain worker thread
 * cannot load. `--import tsx` is not enough: on Node 20, tsx 4 registers its hooks on the main
 * thread only (workers from Node 22.22.3 / 24.11.1 on), so the worker calls tsx's register()
 * itself, from a one-line --import. Compiled to dist/, the .js worker needs nothing.
 */
function resolveWorker(): { filename: string; execArgv?: string[] } {
  const isSource = new URL(import.meta.url).pathname.endsWith('.ts');
  if (!isSource) return { filename: new URL('./hash-worker.js', import.meta.url).href };
  // A data: URL cannot resolve bare specifiers, so it gets the absolute URL of tsx's ESM API.
  const registerTsx = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register();`;
  return {
    filename: new URL('./hash-worker.ts', import.meta.url).href,
    execArgv: [
      ...process.execArgv.filter(isInheritableFlag),
      '--import',
      `data:text/javascript,${encodeURIComponent(registerTsx)}`,
    ],
  };
}

/** Throws RangeError for a bcrypt cost it could not use, at start-up rather than at the first hash. */
export function createHashPool(options: HashPoolOptions): HashPool {
  const { threads, allowPlaintext, bcryptCost, bcryptImpl } = options;
  if (!Number.isInteger(bcryptCost) || bcryptCost < MIN_BCRYPT_COST || bcryptCost > MAX_BCRYPT_COST) {
    throw new RangeError(`bcryptCost must be an integer from ${MIN_BCRYPT_COST} to ${MAX_BCRYPT_COST}`);
  }
  const piscina = new Piscina<HashTask, HashVerdict | string>({
    ...resolveWorker(),
    minThreads: threads,
    maxThreads: threads,
  });

  // Piscina would quietly start fresh threads for tasks arriving after close(); refuse them.
  let isClosed = false;
  const runTask = (task: HashTask) => {
    if (isClosed) return Promise.reject(new Error('the hash pool is closed'));
    return piscina.run(task) as Promise<HashVerdict | string>;
  };

  return {
    async verify(stored, candidate) {
      if (!isExpensiveScheme(stored)) return verifyPasswordHash(stored, candidate, { allowPlaintext, bcryptImpl });
      return (await runTask({ kind: 'verify', stored, candidate, allowPlaintext, bcryptImpl })) as HashVerdict;
    },
    async hash(password, scheme) {
      return (await runTask({ kind: 'hash', password, scheme, options: { bcryptCost, bcryptImpl } })) as string;
    },
    get queueDepth() {
      return piscina.queueSize;
    },
    threads,
    async close() {
      isClosed = true;
      // Waits for running tasks: a login being checked still gets its answer.
      await piscina.close();
    },
  };
}
