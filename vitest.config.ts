import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites share one MariaDB and Redis; each file uses its own database and key
    // prefix, so files may run in parallel, but not more than the 2 cores can carry.
    maxWorkers: 2,
    // Test posterns log to files of a run directory; each is scanned for the run's secrets when
    // its postern is destroyed, and all of them once more at the end (test/support/secret-*.ts).
    globalSetup: ['test/support/secret-global.ts'],
    setupFiles: ['test/support/secret-setup.ts'],
  },
});
