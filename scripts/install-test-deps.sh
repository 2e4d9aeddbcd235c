#!/bin/sh
# Installs the Debian packages deskgate's tests and benchmarks need, when
# they are missing. Idempotent; needs root (it is a no-op when everything
# is present). Used by `make test` and `make bench`.
set -eu

PKGS="freeradius-utils freeradius eapoltest iptables ipset iproute2 iperf3 hostapd wpasupplicant dnsmasq-base curl procps"
# The qemu VLAN test (netcfg) boots Debian's kernel under TCG.
PKGS="$PKGS qemu-system-x86 linux-image-amd64 busybox-static cpio"
# The portal's real-browser test.
PKGS="$PKGS chromium"
# External peers (eapol_test, wpa_supplicant) share the tests' clock
# through libfaketime (internal/testepoch).
PKGS="$PKGS faketime tzdata"
# The radio test under qemu (mac80211_hwsim) copies hostapd, wpa_supplicant
# and OpenSSL's legacy provider (MD4 for MS-CHAPv2) into the VM; openssl
# also checks the PKCS#12 in EAP-TLS profiles.
PKGS="$PKGS openssl"
# deskgated as it ships: cgo with OpenSSL's libcrypto, linked statically
# (scripts/gobuild.sh, internal/rsasign).
PKGS="$PKGS gcc libc6-dev libssl-dev"
# The install image (make image, appliance/update/vmtest).
PKGS="$PKGS genimage rauc grub-pc-bin grub-common squashfs-tools e2fsprogs dbus-daemon ca-certificates linux-image-amd64 busybox-static cpio openssl"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-test-deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "install-test-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
# Debian enables and starts freeradius on install; the benchmark runs its
# own instance on other ports, so the system one stays off.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now freeradius >/dev/null 2>&1 || true; fi
pkill -x freeradius 2>/dev/null || true
