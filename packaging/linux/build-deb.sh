#!/usr/bin/env bash
# Packs a PyInstaller bundle into a .deb with dpkg-deb:
#   /opt/sigdesk/ (the bundle), /usr/bin/sigdesk, a desktop entry and icons.
# Usage: build-deb.sh BUNDLE_DIR OUT_DIR VERSION
# Env: SIGDESK_DEB_COMPRESSION (xz, the default: smallest download; zstd or gzip build faster).
set -euo pipefail
BUNDLE=$(cd "$1" && pwd); OUT=$2; VERSION=$3
HERE=$(cd "$(dirname "$0")" && pwd); ICONS=$HERE/../icons
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d); trap 'rm -rf "$STAGE"' EXIT

install -d "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/icons/hicolor/256x256/apps" "$STAGE/usr/share/icons/hicolor/scalable/apps" \
  "$STAGE/usr/share/doc/sigdesk" "$STAGE/DEBIAN"
cp -a "$BUNDLE" "$STAGE/opt/sigdesk"
# Qt WebEngine creates this empty folder at first start when it is missing: shipping it keeps the
# install folder read-only in practice (and lets the package manager remove it again).
[ -d "$STAGE/opt/sigdesk"/_internal/PySide6/Qt/resources ] && install -d "$STAGE/opt/sigdesk"/_internal/PySide6/Qt/resources/locales
install -m 0755 "$HERE/sigdesk-wrapper.sh" "$STAGE/usr/bin/sigdesk"
install -m 0644 "$HERE/sigdesk.desktop" "$STAGE/usr/share/applications/sigdesk.desktop"
install -m 0644 "$ICONS/sigdesk.png" "$STAGE/usr/share/icons/hicolor/256x256/apps/sigdesk.png"
install -m 0644 "$ICONS/sigdesk.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/sigdesk.svg"
install -m 0644 "$HERE/copyright" "$STAGE/usr/share/doc/sigdesk/copyright"
install -m 0755 "$HERE/postinst" "$HERE/postrm" "$STAGE/DEBIAN/"

# Depends: the packages that hold the system libraries the bundle links to but does not carry
# (glibc, OpenGL/EGL...), found on this build machine. Build on the oldest release you support.
DEPENDS=$(python3 "$HERE/system_deps.py" "$STAGE/opt/sigdesk")
SIZE=$(du -sk --apparent-size "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: sigdesk
Version: $VERSION
Architecture: $ARCH
Maintainer: SigDesk <support@sigdesk.app>
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: xdg-utils
Section: net
Priority: optional
Homepage: https://sigdesk.app
Description: self-hosted WhatsApp CRM for small businesses
 SigDesk keeps your business's WhatsApp conversations on your own computer:
 the owner works in a desktop window, staff on the office network in a browser.
 Your data stays in ~/.local/share/SigDesk, which removing the package keeps.
CONTROL

mkdir -p "$OUT"
DEB="$OUT/sigdesk_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Z"${SIGDESK_DEB_COMPRESSION:-xz}" --build "$STAGE" "$DEB" >/dev/null
echo "deb: $DEB ($(du -m "$DEB" | cut -f1) MB, installs $((SIZE / 1024)) MB)"
