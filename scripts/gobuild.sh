#!/usr/bin/env bash
# Builds Go commands the way deskgated ships: static, and with OpenSSL's
# libcrypto for the RSA private-key operation of the EAP server
# (internal/rsasign) when gcc and libssl-dev are present.
#
#   LDFLAGS="-s -w ..." TAGS=timetzdata scripts/gobuild.sh [go build flags] PKG...
#
# DESKGATE_OPENSSL=1 requires OpenSSL (the image, make test), 0 builds pure
# Go (CGO_ENABLED=0), auto (the default) uses OpenSSL when it can and says
# so when it cannot. Used by the Makefile, scripts/image/build.sh, the
# image tests and make bench, so they all run the same build.
set -euo pipefail

mode=${DESKGATE_OPENSSL:-auto}
have_openssl() {
	command -v "${CC:-gcc}" >/dev/null 2>&1 && [ -r /usr/include/openssl/evp.h ] &&
		compgen -G '/usr/lib/*/libcrypto.a' >/dev/null
}
case $mode in
auto)
	if have_openssl; then
		mode=1
	else
		mode=0
		echo "gobuild: gcc or libssl-dev missing, building without OpenSSL: RSA server certificates sign about 3x slower (apt-get install gcc libc6-dev libssl-dev)" >&2
	fi
	;;
1) have_openssl || { echo "gobuild: DESKGATE_OPENSSL=1 needs gcc, libc6-dev and libssl-dev (libcrypto.a); scripts/install-test-deps.sh installs them" >&2; exit 1; } ;;
0) ;;
*) echo "gobuild: DESKGATE_OPENSSL must be 0, 1 or auto, not $mode" >&2; exit 1 ;;
esac

tags=${TAGS:-}
ld=${LDFLAGS:-}
if [ "$mode" = 1 ]; then
	export CGO_ENABLED=1
	tags="${tags:+$tags,}openssl,netgo,osusergo"
	ld="$ld -linkmode external -extldflags -static"
else
	export CGO_ENABLED=0
fi
# glibc warns that static binaries calling dlopen or getaddrinfo need its
# shared libraries at run time: the callers are libcrypto's DSO loader and
# BIO address lookups, which deskgated never reaches (rsasign signs with a
# key in memory and loads no providers). Drop those warnings, keep the rest.
errs=$(mktemp)
trap 'rm -f "$errs"' EXIT
status=0
go build ${tags:+-tags "$tags"} ${ld:+-ldflags "$ld"} "$@" 2>"$errs" || status=$?
awk '
	/libcrypto\.a\(/ || /in statically linked applications requires at runtime/ { next }
	/^# / { hdr = $0; next }
	{ if (hdr != "") { print hdr; hdr = "" } print }' "$errs" >&2
exit $status
