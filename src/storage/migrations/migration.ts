// The shape of one schema step; index.ts lists them, each 000N-*.ts defines one.

/**
 * One schema step. `statements` run in order, one per query (multipleStatements is off), and
 * must be safe to run again on a database where they already ran or where mailcow created the
 * tables: DDL commits implicitly in MySQL, so a crash mid-migration re-runs the whole step.
 */
export interface Migration {
  /** Ascending, never reused; the runner records it in `postern_migrations`. */
  id: number;
  name: string;
  statements: readonly string[];
}
