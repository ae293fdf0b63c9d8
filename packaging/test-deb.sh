#!/usr/bin/env bash
# The full Linux packaging test (minutes; as root on Debian/Ubuntu with Xvfb): builds the bundle and
# the .deb, installs it, runs the installed `sigdesk serve` and `sigdesk desktop`, then uninstalls.
# Run before resolving packaging changes; figures land in test-artifacts/packaging-figures.json.
# Sets up what it needs itself (the .venv with pytest and PyInstaller, Xvfb), so it works in a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test-deb.sh installs a .deb: run it as root." >&2; exit 1; }
command -v dpkg-deb >/dev/null 2>&1 || { echo "test-deb.sh needs Debian/Ubuntu (dpkg-deb)." >&2; exit 1; }
if ! command -v xvfb-run >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -e '.[test,packaging]'

SIGDESK_PACKAGING_TESTS=1 exec .venv/bin/python -m pytest -q -s -p no:randomly tests/packaging/test_deb.py "$@"
