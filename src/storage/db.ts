// The mysql2 pool and the only three ways the rest of postern talks SQL: one row, many rows,
// execute. Everything thrown here is a fault (AppError backend_unavailable), never a denial.
import mysql from 'mysql2/promise';
import { AppError, toBackendFault } from '../errors.js';
import type { Logger } from '../log.js';
import { createOutageLog, type OutageLog } from './outage-log.js';

export type SqlValue = string | number | bigint | boolean | Date | null | Buffer;
export type Row = Record<string, unknown>;

/** What a transaction may do: the three query helpers on one connection. */
export type Tx = Pick<Db, 'one' | 'many' | 'execute'>;

export interface Db {
  one<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  many<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** INSERT/UPDATE/DELETE/DDL; returns affected rows and the insert id. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<{ affectedRows: number; insertId: number }>;
  /** Run `work` in one transaction on one connection; rolled back if it throws. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
  readonly databaseName: string;
}

interface DbOptions {
  url: string;
  poolSize: number;
  /** Create the database named in the URL if it does not exist. */
  createDatabase?: boolean;
  /** Where an outage is logged (once, a summary, the recovery); without it, nothing is. */
  log?: Logger;
}

const CONNECT_TIMEOUT_MS = 2000;
const QUERY_TIMEOUT_MS = 5000;

export async function createDb(options: DbOptions): Promise<Db> {
  const url = new URL(options.url);
  const databaseName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(databaseName)) {
    throw new AppError('bad_request', 'POSTERN_DB_URL must name a database (letters, digits, _ $ -)');
  }
  const connection = {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    charset: 'utf8mb4_general_ci',
    connectTimeout: CONNECT_TIMEOUT_MS,
  };

  if (options.createDatabase) {
    try {
      const admin = await mysql.createConnection(connection);
      try {
        await admin.query(
          `CREATE DATABASE IF NOT EXISTS \`${databaseName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`,
        );
      } finally {
        await admin.end();
      }
    } catch (error) {
      throw toBackendFault('MySQL', error);
    }
  }

  const pool = mysql.createPool({
    ...connection,
    database: databaseName,
    connectionLimit: options.poolSize,
    waitForConnections: true,
    // A bounded wait: when every connection is stuck the caller gets a fault, not a hang.
    queueLimit: options.poolSize * 50,
    enableKeepAlive: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: false,
  });
  // mysql2 emits 'error' on idle connections that die; without a listener it would crash us.
  pool.on('connection', (conn) => conn.on('error', () => undefined));
  const outage: OutageLog | undefined = options.log && createOutageLog({ log: options.log, backend: 'MySQL' });
  /** classify(), and the outage log told of a fault; the requests that fail meanwhile log nothing more. */
  const fault = (error: unknown) => {
    const classified = classify(error);
    if (outage && isBackendFault(classified)) outage.noteFailure(classified);
    return classified;
  };

  type Queryable = mysql.Pool | mysql.PoolConnection;
  type CoreExecutor = {
    execute(
      options: { sql: string; timeout: number; values: SqlValue[] },
      callback: (error: unknown, result: unknown) => void,
    ): unknown;
  };

  // The callback API underneath: mysql2's promise wrapper captures a stack trace for every query,
  // which costs more than the query itself on the passdb's hot path.
  const run = (target: Queryable, sql: string, params: readonly SqlValue[] = []) => {
    // PromisePoolConnection.connection is the core connection at run time, whatever its typing says.
    const core = ('pool' in target ? target.pool : target.connection) as unknown as CoreExecutor;
    return new Promise<unknown>((resolve, reject) => {
      core.execute({ sql, timeout: QUERY_TIMEOUT_MS, values: params as SqlValue[] }, (error, result) => {
        if (error) reject(fault(error));
        else {
          outage?.noteSuccess();
          resolve(result);
        }
      });
    });
  };

  const bind = (target: Queryable) => ({
    async one<T extends Row>(sql: string, params?: readonly SqlValue[]) {
      const rows = (await run(target, sql, params)) as T[];
      return rows[0];
    },
    async many<T extends Row>(sql: string, params?: readonly SqlValue[]) {
      return (await run(target, sql, params)) as T[];
    },
    async execute(sql: string, params?: readonly SqlValue[]) {
      const result = (await run(target, sql, params)) as mysql.ResultSetHeader;
      return { affectedRows: result.affectedRows, insertId: result.insertId };
    },
  });

  return {
    databaseName,
    ...bind(pool),
    async transaction(work) {
      let conn: mysql.PoolConnection;
      try {
        conn = await pool.getConnection();
      } catch (error) {
        throw fault(error);
      }
      try {
        await conn.beginTransaction();
        const result = await work(bind(conn));
        await conn.commit();
        return result;
      } catch (error) {
        await conn.rollback().catch(() => undefined);
        throw classify(error);
      } finally {
        conn.release();
      }
    },
    async ping() {
      await run(pool, 'SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}

function isBackendFault(error: unknown): boolean {
  return error instanceof AppError && error.code === 'backend_unavailable';
}

/**
 * SQL mistakes (syntax, constraint violations) are bugs or conflicts and keep their identity;
 * everything that smells of the server being away is a temporary fault.
 */
function classify(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'ER_DUP_ENTRY') return new AppError('conflict', 'already exists', { cause: error });
  if (code.startsWith('ER_') && !TRANSIENT_SERVER_CODES.has(code)) return error;
  return toBackendFault('MySQL', error);
}

const TRANSIENT_SERVER_CODES = new Set([
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_SERVER_SHUTDOWN',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** Text for a LIKE pattern with `ESCAPE '!'`: its own %, _ and ! match only themselves. */
export const escapeLike = (text: string): string => text.replace(/[!%_]/g, (char) => `!${char}`);
