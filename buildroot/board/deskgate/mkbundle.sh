#!/bin/sh
# Builds a signed RAUC bundle (verity format) from a root slot image.
# Usage: mkbundle.sh ROOTFS.squashfs VERSION OUT.raucb [BOARD]
# Env:   DESKGATE_SIGN_CERT, DESKGATE_SIGN_KEY (default: the dev keys in
#        $DESKGATE_KEYS_DIR), DESKGATE_KEYS_DIR.
set -eu
ROOTFS=$1
VERSION=$2
OUT=$3
BOARD=${4:-x86_64}
CERT=${DESKGATE_SIGN_CERT:-$DESKGATE_KEYS_DIR/signing.cert.pem}
KEY=${DESKGATE_SIGN_KEY:-$DESKGATE_KEYS_DIR/signing.key.pem}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir "$WORK/b"
cp "$ROOTFS" "$WORK/b/rootfs.squashfs"
cat >"$WORK/b/manifest.raucm" <<MANIFEST
[update]
compatible=deskgate-$BOARD
version=$VERSION
description=deskgate $VERSION

[bundle]
format=verity

[image.rootfs]
filename=rootfs.squashfs
MANIFEST
rm -f "$OUT"
rauc bundle --cert="$CERT" --key="$KEY" "$WORK/b" "$OUT" >/dev/null 2>&1 || rauc bundle --cert="$CERT" --key="$KEY" "$WORK/b" "$OUT"
