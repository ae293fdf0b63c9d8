#!/usr/bin/env bash
# The full Linux packaging test (minutes; as root on Debian/Ubuntu with Xvfb): builds the bundle and
# the .deb, installs it, runs the installed `sigdesk serve` and `sigdesk desktop`, then uninstalls.
# Run before resolving packaging changes; figures land in test-artifacts/packaging-figures.json.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c 'import PyInstaller' 2>/dev/null || .venv/bin/pip install -e '.[packaging]'
SIGDESK_PACKAGING_TESTS=1 exec .venv/bin/python -m pytest -q -s -p no:randomly tests/packaging/test_deb.py "$@"
