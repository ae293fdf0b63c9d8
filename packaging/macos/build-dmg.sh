#!/usr/bin/env bash
# Packs dist/SigDesk.app (made by packaging/sigdesk.spec's BUNDLE on macOS) into a compressed dmg
# with an Applications shortcut to drag onto. Usage: build-dmg.sh APP OUT_DIR VERSION
# Signing and notarisation (needed to open without a Gatekeeper warning) when a Developer ID is set:
#   SIGDESK_CODESIGN_ID="Developer ID Application: ..." SIGDESK_NOTARY_PROFILE=<notarytool keychain profile>
set -euo pipefail
APP=$1; OUT=$2; VERSION=$3
DMG="$OUT/SigDesk-$VERSION.dmg"
STAGE=$(mktemp -d); trap 'rm -rf "$STAGE"' EXIT
if [ -n "${SIGDESK_CODESIGN_ID:-}" ]; then
  codesign --force --deep --options runtime --timestamp --sign "$SIGDESK_CODESIGN_ID" "$APP"
fi
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "SigDesk $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
if [ -n "${SIGDESK_CODESIGN_ID:-}" ]; then
  codesign --sign "$SIGDESK_CODESIGN_ID" --timestamp "$DMG"
  [ -n "${SIGDESK_NOTARY_PROFILE:-}" ] && xcrun notarytool submit "$DMG" --keychain-profile "$SIGDESK_NOTARY_PROFILE" --wait \
    && xcrun stapler staple "$DMG"
fi
echo "dmg: $DMG ($(du -m "$DMG" | cut -f1) MB)"
