#!/bin/sh
# deskgate post-image: the boot partition (grub.cfg, grubenv), an empty data
# partition, the disk image (genimage) and a signed update bundle.
# (Buildroot's BR2_ROOTFS_POST_IMAGE_SCRIPT; `make image` calls it the same
# way.) Args: BINARIES_DIR BOARD. Reads BINARIES_DIR/rootfs.squashfs and,
# for x86_64, GRUB's boot.img and grub.img.
# Env: DESKGATE_VERSION, DESKGATE_DATA_SEED (a directory copied onto the
#      data partition, e.g. a prepared config/), DESKGATE_KEYS_DIR.
set -eu
BIN=$1
BOARD=${2:-x86_64}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -n "${HOST_DIR:-}" ] && PATH=$HOST_DIR/bin:$HOST_DIR/sbin:$PATH
PATH=$PATH:/sbin:/usr/sbin
export PATH
VERSION=${DESKGATE_VERSION:-$(cat "${TARGET_DIR:-/nonexistent}/etc/deskgate/version" 2>/dev/null || echo dev)}
export DESKGATE_KEYS_DIR=${DESKGATE_KEYS_DIR:-${BASE_DIR:-$BIN/..}/deskgate-keys}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# grubenv: slot A good and untried, slot B empty.
mkdir -p "$WORK/boot/grub"
cp "$HERE/grub.cfg" "$WORK/boot/grub/grub.cfg"
grub-editenv "$WORK/boot/grub/grubenv" create
grub-editenv "$WORK/boot/grub/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
cp "$WORK/boot/grub/grubenv" "$BIN/grubenv"
cp "$HERE/grub.cfg" "$BIN/grub.cfg"

rm -f "$BIN/boot.ext2" "$BIN/data.ext4"
mkfs.ext2 -q -F -L boot -m 0 -d "$WORK/boot" "$BIN/boot.ext2" 8M >/dev/null
mkdir -p "$WORK/data"
if [ -n "${DESKGATE_DATA_SEED:-}" ]; then cp -a "$DESKGATE_DATA_SEED/." "$WORK/data/"; fi
mkfs.ext4 -q -F -L data -m 0 -d "$WORK/data" "$BIN/data.ext4" 64M >/dev/null

CFG=$HERE/genimage.cfg
[ "$BOARD" = rpi4_64 ] && CFG=$HERE/genimage-rpi4.cfg
mkdir -p "$WORK/root" "$WORK/tmp"
genimage --config "$CFG" --inputpath "$BIN" --outputpath "$BIN" \
	--rootpath "$WORK/root" --tmppath "$WORK/tmp" >"$WORK/genimage.log" 2>&1 ||
	{ cat "$WORK/genimage.log" >&2; exit 1; }

"$HERE/mkkeys.sh" "$DESKGATE_KEYS_DIR" >/dev/null
[ "${DESKGATE_NO_BUNDLE:-}" = 1 ] || "$HERE/mkbundle.sh" "$BIN/rootfs.squashfs" "$VERSION" "$BIN/update.raucb" "$BOARD"
