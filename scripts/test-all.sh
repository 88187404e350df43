#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it all:
# type-check, every bun test (unit, integration, real Chromium; the integration suite once on
# SQLite and once on PostgreSQL), and seconds-long smokes of
# the benchmark harness and of its soak (leak test). Ends with "N passed, M failed"; exits
# non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(ffmpeg chromium chromium-driver nginx-core wrk hyperfine fonts-dejavu-core postgresql strace)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "== installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
fi

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error || { echo "0 passed, 1 failed"; exit 1; }
BUN=./node_modules/.bin/bun
# Slowness is the benchmark's business, not a test's: 30 s per test and hook unless a test says
# more (bun's own default is 5 s; Bun 1.4.5's bunfig.toml has no key for it, only this flag).
TEST=("$BUN" test --timeout 30000)

failed_steps=0
echo "== type-check (tsc --noEmit)"
./node_modules/.bin/tsc --noEmit -p . || failed_steps=$((failed_steps + 1))

echo "== Dockerfile lint"
./node_modules/.bin/dockerfilelint Dockerfile || failed_steps=$((failed_steps + 1))

# One throwaway PostgreSQL for the whole run (tests make a database each): Debian's binaries,
# run as the `postgres` user because initdb refuses root. Stopped on exit, whatever happens.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_DIR=$(mktemp -d /tmp/spool-ci-pg.XXXXXX)
chmod 777 "$PG_DIR"
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AS_PG=()
[ "$(id -u)" -eq 0 ] && AS_PG=(runuser -u postgres --)
stop_postgres() { "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$PG_DIR"; }
trap stop_postgres EXIT
echo "== PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null \
  && "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
  || { echo "PostgreSQL did not start"; echo "0 passed, 1 failed"; exit 1; }
export SPOOL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

echo "== bun test (SQLite, the default; PostgreSQL-specific tests use the server above)"
mkdir -p test-results
rm -f test-results/junit*.xml
"${TEST[@]}" --reporter=junit --reporter-outfile=test-results/junit.xml
test_status=$?

echo "== bun test test/integration on PostgreSQL (SPOOL_TEST_DATABASE=postgres)"
SPOOL_TEST_DATABASE=postgres "${TEST[@]}" test/integration --reporter=junit --reporter-outfile=test-results/junit-postgres.xml
[ $? -ne 0 ] && test_status=1

echo "== stream (local and STORAGE=s3), static and clip tests with the RAM tier off (SPOOL_TEST_MEMORY_CACHE_BYTES=0; on everywhere else)"
SPOOL_TEST_MEMORY_CACHE_BYTES=0 "${TEST[@]}" test/integration/stream.test.ts test/integration/stream-s3.test.ts test/integration/static.test.ts test/integration/clips.test.ts test/integration/header-fuzz.test.ts --reporter=junit --reporter-outfile=test-results/junit-no-memory-tier.xml
[ $? -ne 0 ] && test_status=1

echo "== clip tests with clips never kept as files (SPOOL_TEST_CLIP_CACHE_BYTES=0; kept everywhere else): the streamed answers"
SPOOL_TEST_CLIP_CACHE_BYTES=0 "${TEST[@]}" test/integration/clips.test.ts test/integration/clips-co64.test.ts --reporter=junit --reporter-outfile=test-results/junit-no-clip-cache.xml
[ $? -ne 0 ] && test_status=1

echo "== benchmark harness smoke"
"$BUN" bench/run.ts --smoke || failed_steps=$((failed_steps + 1))

echo "== benchmark soak smoke (5 s of mixed traffic: RSS, fds, errors)"
"$BUN" bench/run.ts --soak --soak-seconds=5 || failed_steps=$((failed_steps + 1))

# Exact counts from the junit reports (the extra steps above count as one test each), and the
# failed tests again by name with their first lines on stderr, so the end of a long log says
# which test failed and why (bun prints them where they ran, hundreds of lines up).
read -r tests failures errors skipped < <(
  python3 - <<'PY' || echo "0 1 0 0"
import glob
import sys
import xml.etree.ElementTree as ET
cases = [(f, c) for f in sorted(glob.glob("test-results/junit*.xml")) for c in ET.parse(f).getroot().iter("testcase")]
failures = errors = skipped = 0
for f, c in cases:
    failure, error = c.find("failure"), c.find("error")
    failures += failure is not None
    errors += error is not None
    skipped += c.find("skipped") is not None
    bad = failure if failure is not None else error
    if bad is None:
        continue
    print(f"FAILED ({f}): {c.get('classname', '')} > {c.get('name', '')} [{c.get('file', '')}]", file=sys.stderr)
    text = bad.text or bad.get("message") or ""
    for line in [l for l in text.splitlines() if l.strip()][:12]:
        print("    " + line[:300], file=sys.stderr)
print(len(cases), failures, errors, skipped)
PY
)
passed=$((tests - failures - errors - skipped + 4 - failed_steps))
failed=$((failures + errors + failed_steps))
if [ "$test_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
