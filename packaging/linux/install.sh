#!/bin/sh
# Installs SigDesk for the current user from the unpacked tarball (no root needed):
#   ~/.local/opt/sigdesk, ~/.local/bin/sigdesk, a menu entry and icon.
#   ./install.sh            install or upgrade (data in ~/.local/share/SigDesk is kept)
#   ./install.sh --uninstall   remove the program; the data stays unless you delete it yourself
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-$HOME/.local}
APPS=${XDG_DATA_HOME:-$HOME/.local/share}/applications
ICONS=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps
if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$PREFIX/opt/sigdesk" "$PREFIX/bin/sigdesk" "$APPS/sigdesk.desktop" "$ICONS/sigdesk.png"
  echo "SigDesk removed. Your data is still in ${XDG_DATA_HOME:-$HOME/.local/share}/SigDesk."
  exit 0
fi
mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$APPS" "$ICONS"
rm -rf "$PREFIX/opt/sigdesk.new" && cp -a "$HERE/sigdesk" "$PREFIX/opt/sigdesk.new"
rm -rf "$PREFIX/opt/sigdesk" && mv "$PREFIX/opt/sigdesk.new" "$PREFIX/opt/sigdesk"
printf '#!/bin/sh\nexec "%s/opt/sigdesk/sigdesk" "$@"\n' "$PREFIX" > "$PREFIX/bin/sigdesk"
chmod 0755 "$PREFIX/bin/sigdesk"
sed "s|^Exec=sigdesk|Exec=$PREFIX/bin/sigdesk|" "$HERE/sigdesk.desktop" > "$APPS/sigdesk.desktop"
cp "$HERE/sigdesk.png" "$ICONS/sigdesk.png"
echo "SigDesk installed: run 'sigdesk' (make sure $PREFIX/bin is on your PATH) or pick it from the menu."
