import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.{ts,tsx}', 'test/**/*.test.ts', 'cron/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites share one MariaDB and Redis; each file uses its own database and key
    // prefix, so files may run in parallel, but not more than the 2 cores can carry.
    maxWorkers: 2,
  },
});
