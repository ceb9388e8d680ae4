#!/usr/bin/env bash
# Sets up everything the suite needs on a fresh Debian 12 machine (packages, MariaDB, Redis,
# npm dependencies), runs every test, and ends with the plain line "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh || { echo "system setup failed"; echo "0 passed, 1 failed"; exit 1; }
# npm install, not npm ci: this machine's npm 11 writes lock files without the other platforms'
# optional binaries (biome, @node-rs/*) and then refuses them in npm ci. With the lock file
# present, npm install installs exactly the locked versions.
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm install --no-audit --no-fund || { echo "npm install failed"; echo "0 passed, 1 failed"; exit 1; }
fi

report=$(mktemp --suffix=.json)
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@"
status=$?
node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0;
  try {
    const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    passed = r.numPassedTests;
    failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
    for (const suite of r.testResults ?? []) if (suite.status === "failed" && (suite.assertionResults ?? []).length === 0) failed += 1;
  } catch { failed += 1; }
  console.log(`${passed} passed, ${failed} failed`);
' "$report"
rm -f "$report"
exit $status
