#!/usr/bin/env bash
# Sets up everything the test suite needs, then runs it. Safe to run again; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# Browser and window tests use Debian's Chromium and Xvfb (never a downloaded browser).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=""
  [ -x /usr/lib/chromium/chromium ] || missing="$missing chromium"
  command -v xvfb-run >/dev/null 2>&1 || missing="$missing xvfb"
  for pkg in libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

# Lint and format first: a style slip fails in a second, before the suite's minutes.
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .

# Subprocesses (servers, the CLI, the sending process) import SigDesk from the bytecode the workers wrote,
# not from source each time, even where the environment says not to write it. Work-stealing keeps both
# workers busy to the end when a few tests take most of a minute.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -n 2 --dist worksteal "$@"
