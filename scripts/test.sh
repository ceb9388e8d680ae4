#!/usr/bin/env bash
# Sets up everything the suite needs on a fresh Debian 12 machine (packages, MariaDB, Redis,
# npm dependencies), runs every test on the machine's Node.js and again on the LTS Node.js
# postern ships on (.node-version), and ends with the plain line "N passed, M failed" for both
# runs together. Extra arguments go to vitest (e.g. a file filter). POSTERN_TEST_RUNTIMES=machine
# or =lts runs one of the two. The container tests (test/container.test.ts and
# test/compose-stack.test.ts: podman builds and runs, minutes on a cold cache) run once, in the
# machine pass; the images have their own Node.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh || { echo "system setup failed"; echo "0 passed, 1 failed"; exit 1; }
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi

runtimes=${POSTERN_TEST_RUNTIMES:-machine lts}
reports=()
status=0
for runtime in $runtimes; do
  case $runtime in
    machine) node=$(command -v node) ;;
    lts) node=$(bash scripts/lts-node.sh) || { echo "could not fetch the LTS Node.js"; echo "0 passed, 1 failed"; exit 1; } ;;
    *) echo "unknown runtime '$runtime' in POSTERN_TEST_RUNTIMES"; echo "0 passed, 1 failed"; exit 1 ;;
  esac
  once=()
  [[ $runtime == machine ]] || once=(--exclude test/container.test.ts --exclude test/compose-stack.test.ts)
  echo "=== vitest on Node.js $("$node" --version) ($runtime)"
  report=$(mktemp --suffix=.json)
  reports+=("$report")
  PATH="$(dirname "$node"):$PATH" "$node" node_modules/vitest/vitest.mjs run \
    --reporter=default --reporter=json --outputFile="$report" "${once[@]}" "$@" || { status=1; touch "$report.failed"; }
done

node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0;
  for (const file of process.argv.slice(1)) {
    try {
      const r = JSON.parse(fs.readFileSync(file, "utf8"));
      let runFailed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
      // A file that failed outside its tests (import, beforeAll) counts once as well.
      for (const suite of r.testResults ?? []) {
        const failedTests = (suite.assertionResults ?? []).filter((t) => t.status === "failed").length;
        if (suite.status === "failed" && failedTests === 0) runFailed += 1;
      }
      // vitest failed with every test green (the end-of-run secret scan, a global hook): one failure.
      if (runFailed === 0 && fs.existsSync(`${file}.failed`)) runFailed = 1;
      passed += r.numPassedTests;
      failed += runFailed;
    } catch { failed += 1; }
  }
  console.log(`${passed} passed, ${failed} failed`);
' "${reports[@]}"
for report in "${reports[@]}"; do rm -f "$report" "$report.failed"; done
exit $status
