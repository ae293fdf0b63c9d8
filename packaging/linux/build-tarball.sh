#!/usr/bin/env bash
# A tarball for distributions without dpkg: the bundle plus install.sh (per user, no root needed).
# Usage: build-tarball.sh BUNDLE_DIR OUT_DIR VERSION
set -euo pipefail
BUNDLE=$(cd "$1" && pwd); OUT=$2; VERSION=$3
HERE=$(cd "$(dirname "$0")" && pwd)
NAME="sigdesk-$VERSION-linux-$(uname -m)"
STAGE=$(mktemp -d); trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/$NAME"
cp -a "$BUNDLE" "$STAGE/$NAME/sigdesk"
# Qt WebEngine creates this empty folder at first start when it is missing: shipping it keeps the
# install folder read-only in practice (and lets the package manager remove it again).
[ -d "$STAGE/$NAME/sigdesk"/_internal/PySide6/Qt/resources ] && install -d "$STAGE/$NAME/sigdesk"/_internal/PySide6/Qt/resources/locales
install -m 0644 "$HERE/sigdesk.desktop" "$HERE/../icons/sigdesk.png" "$STAGE/$NAME/"
install -m 0755 "$HERE/install.sh" "$STAGE/$NAME/"
mkdir -p "$OUT"
tar -C "$STAGE" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "tarball: $OUT/$NAME.tar.gz ($(du -m "$OUT/$NAME.tar.gz" | cut -f1) MB)"
