#!/bin/sh
# deskgate post-build: runs on the target tree after the overlay is copied
# (Buildroot's BR2_ROOTFS_POST_BUILD_SCRIPT; `make image` calls it the same
# way). Args: TARGET_DIR BOARD (x86_64 | rpi4_64).
# Env: DESKGATE_RAUC_KEYRING  the update CA (PEM) the box trusts; without
#      it a development CA is created under $BASE_DIR/deskgate-keys (never
#      committed; see mkkeys.sh).
set -eu
TARGET=$1
BOARD=${2:-x86_64}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$TARGET/data" "$TARGET/boot" "$TARGET/run" "$TARGET/tmp" "$TARGET/proc" \
	"$TARGET/sys" "$TARGET/dev" "$TARGET/root" "$TARGET/etc/rauc" "$TARGET/etc/deskgate" "$TARGET/var"
# State lives on /data or in tmpfs; the root slot is read-only squashfs.
ln -sfn /run/resolv.conf "$TARGET/etc/resolv.conf"
rm -rf "$TARGET/var/run" && ln -sfn /run "$TARGET/var/run"
rm -rf "$TARGET/var/log" && ln -sfn /run/log "$TARGET/var/log"

sed "s/@COMPATIBLE@/deskgate-$BOARD/" "$HERE/rauc/system.conf" >"$TARGET/etc/rauc/system.conf"

KEYRING=${DESKGATE_RAUC_KEYRING:-}
if [ -z "$KEYRING" ]; then
	KEYS=${BASE_DIR:-$TARGET/..}/deskgate-keys
	"$HERE/mkkeys.sh" "$KEYS"
	KEYRING=$KEYS/ca.cert.pem
fi
install -m 0644 "$KEYRING" "$TARGET/etc/rauc/keyring.pem"
[ -s "$TARGET/etc/deskgate/version" ] || echo "${DESKGATE_VERSION:-dev}" >"$TARGET/etc/deskgate/version"
