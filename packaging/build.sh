#!/usr/bin/env bash
# Builds SigDesk's one-folder bundle with PyInstaller, then this platform's installers:
#   Linux: dist/sigdesk_<version>_<arch>.deb and dist/sigdesk-<version>-linux-<arch>.tar.gz
#   macOS: dist/SigDesk.app and dist/SigDesk-<version>.dmg
#   Windows: see packaging/windows/build.ps1 (Inno Setup)
# Env: PYTHON (default .venv/bin/python), SIGDESK_DIST (default dist/), SIGDESK_PRUNE=0 (no pruning).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DIST=${SIGDESK_DIST:-$ROOT/dist}
WORK=${SIGDESK_WORK:-$ROOT/build/pyinstaller}
VERSION=$("$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); from sigdesk import __version__; print(__version__)' "$ROOT")

"$PYTHON" -c 'import PyInstaller' 2>/dev/null || {
  echo "PyInstaller is missing: $PYTHON -m pip install -e '.[packaging]'" >&2; exit 1; }

SECONDS=0
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK" "$ROOT/packaging/sigdesk.spec"
echo "bundle: $DIST/sigdesk ($(du -sm "$DIST/sigdesk" | cut -f1) MB) in ${SECONDS} s"

case "$(uname -s)" in
  Linux)
    bash "$ROOT/packaging/linux/build-deb.sh" "$DIST/sigdesk" "$DIST" "$VERSION"
    bash "$ROOT/packaging/linux/build-tarball.sh" "$DIST/sigdesk" "$DIST" "$VERSION"
    ;;
  Darwin)
    bash "$ROOT/packaging/macos/build-dmg.sh" "$DIST/SigDesk.app" "$DIST" "$VERSION"
    ;;
  *)
    echo "On Windows run packaging/windows/build.ps1 instead." >&2
    ;;
esac
echo "total: ${SECONDS} s"
