#!/usr/bin/env bash
# npm run test:acceptance [FEATURE...]: Patroni 4.1.4's own behave features (shared/reference/patroni-4.1.4/features)
# against pgwarden agents and the pgwarden CLI, through the runner beside them (acceptance/run-all.sh). The runner
# changes only which agent and CLI binaries start; every scenario and assertion is Patroni's. Needs root (each
# feature runs in its own network namespace, behave as `postgres`). Prints one line per scenario, then the
# plain closing line `N passed, N failed`. Not part of the gating CI run: a full pass takes ~20 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
REF=${PATRONI4_REF:-$(realpath ../shared/reference/patroni-4.1.4)}
RUNNER=$REF/acceptance
[ -x "$RUNNER/run-all.sh" ] || { echo "test:acceptance: no runner at $RUNNER (shared/ must sit beside the repository)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test:acceptance: run as root (behave runs as postgres in a network namespace)" >&2; exit 1; }
for cmd in behave etcd runuser unshare; do
  command -v "$cmd" >/dev/null || { echo "test:acceptance: '$cmd' not found: run scripts/install-deps.sh" >&2; exit 1; }
done
/usr/bin/python3 -c 'import pythonjsonlogger' 2>/dev/null || { echo "test:acceptance: python3-pythonjsonlogger missing: run scripts/install-deps.sh" >&2; exit 1; }

# The features issue 9 requires in full, then the safety features of issue 10.
DEFAULT="basic_replication cascading_replication custom_bootstrap nostream_node patroni_api priority_failover
priority_sync recovery watchdog dcs_failsafe_mode standby_cluster quorum_commit ignored_slots permanent_slots"
FEATURES=${*:-$DEFAULT}

npm run --silent build
# The runner's work tree is owned by postgres; it must be able to read the bundle.
chmod -R a+rX "$REPO/bin" "$REPO/dist" "$REPO/node_modules" 2>/dev/null || true

# shared/ is read-only (as in CI) and the runner copies its features/ with their modes: run a writable copy.
HARNESS=$(mktemp -d /tmp/pgwarden-acceptance.XXXXXX)
trap 'rm -rf "$HARNESS"' EXIT
cp -r "$RUNNER/." "$HARNESS/"
chmod -R u+w,a+rX "$HARNESS"
export PATRONI4_SRC=$REF

RESULTS=${RESULTS:-$REPO/.bench/acceptance}
rm -rf "$RESULTS/pgwarden"
mkdir -p "$RESULTS"
export RESULTS AGENT=pgwarden PGWARDEN_BIN=$REPO/bin/run.js JOBS=${JOBS:-1}
# shellcheck disable=SC2086
"$HARNESS/run-all.sh" $FEATURES | tail -n +1 >"$RESULTS/run-all.txt" || true

# Per-scenario lines from the junit XML, then the closing line.
FEATURES="$FEATURES" /usr/bin/python3 - "$RESULTS/pgwarden" <<'PY'
import glob, os, sys
import xml.etree.ElementTree as ET
root = sys.argv[1]
passed = failed = skipped = 0
for feature in os.environ['FEATURES'].split():
    xmls = sorted(glob.glob(os.path.join(root, feature, 'junit', '*.xml')))
    if not xmls:
        print(f'{feature}: no results (behave did not finish: see {root}/{feature}/behave.txt)')
        failed += 1
        continue
    for x in xmls:
        for tc in ET.parse(x).getroot().iter('testcase'):
            status = tc.get('status')
            if status == 'passed':
                passed += 1
            elif status == 'skipped':
                skipped += 1
            else:
                failed += 1
            fail = tc.find('failure') if tc.find('failure') is not None else tc.find('error')
            why = '' if fail is None else '  ' + ' '.join((fail.get('message') or '').split())[:200]
            print(f'{status:7} {feature} / {tc.get("name")}{why}')
print(f'{passed} passed, {failed} failed' + (f', {skipped} skipped' if skipped else ''))
sys.exit(1 if failed else 0)
PY
