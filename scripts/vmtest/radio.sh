#!/bin/sh
# Boots Debian's kernel under qemu (TCG, no NIC) with mac80211_hwsim (four
# simulated radios), hostapd and wpa_supplicant (copied in with their shared
# libraries) and the appliance package's static test binary, runs the radio
# test inside (deskgated's App as the RADIUS server, the OfficeRnD simulator
# in the same process) and prints its output followed by one line
#   DGVMTEST: PASS   or   DGVMTEST: FAIL ...
# Exit status 0 only on PASS.
# Needs: qemu-system-x86 linux-image-amd64 busybox-static cpio hostapd
# wpasupplicant (Debian), go.
# Usage: scripts/vmtest/radio.sh [test-regexp]   (default ^TestRadioGuest$)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${1:-'^TestRadioGuest$'}
KVER=${DG_VMTEST_KVER:-$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1)}
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER/kernel
BUSYBOX=$(command -v busybox || true)

for f in "$KERNEL" "$MODDIR/drivers/net/wireless/mac80211_hwsim.ko"; do
	[ -e "$f" ] || { echo "DGVMTEST: FAIL missing $f (apt-get install linux-image-amd64)"; exit 1; }
done
[ -n "$BUSYBOX" ] || { echo "DGVMTEST: FAIL busybox missing (apt-get install busybox-static)"; exit 1; }
for tool in qemu-system-x86_64 cpio hostapd wpa_supplicant; do
	command -v $tool >/dev/null || { echo "DGVMTEST: FAIL $tool missing (scripts/install-test-deps.sh)"; exit 1; }
done

WORK=$(mktemp -d /tmp/dg-radiotest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
R=$WORK/root
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/run" "$R/var/run" "$R/lib/modules" "$R/etc"
cp "$BUSYBOX" "$R/bin/busybox"
for m in net/rfkill/rfkill.ko net/wireless/cfg80211.ko lib/crypto/libarc4.ko net/mac80211/mac80211.ko \
	drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/net/wireless/mac80211_hwsim.ko \
	crypto/ctr.ko crypto/ccm.ko crypto/cmac.ko crypto/gcm.ko; do
	cp "$MODDIR/$m" "$R/lib/modules/"
done
# hostapd and wpa_supplicant with their shared libraries (and the loader).
for bin in $(command -v hostapd) $(command -v wpa_supplicant); do
	cp "$bin" "$R/bin/"
	for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
done
# MS-CHAPv2 needs MD4, which OpenSSL 3 keeps in its legacy provider.
OSSL=$(openssl version -m 2>/dev/null | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
[ -n "$OSSL" ] || OSSL=/usr/lib/x86_64-linux-gnu/ossl-modules
[ -d "$OSSL" ] && mkdir -p "$R$OSSL" && cp "$OSSL"/*.so "$R$OSSL/"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
(cd "$ROOT" && CGO_ENABLED=0 go test -c -o "$R/appliance.test" ./appliance)

cat > "$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
for m in rfkill cfg80211 libarc4 mac80211 virtio_ring virtio ctr ccm cmac gcm; do insmod /lib/modules/\$m.ko || echo "insmod \$m failed"; done
insmod /lib/modules/mac80211_hwsim.ko radios=4 || echo "insmod mac80211_hwsim failed"
ip link set lo up
cd /tmp
PATH=/bin DG_VMTEST_GUEST=1 /appliance.test -test.run '$RUN' -test.v -test.count=1 >/tmp/out 2>&1
rc=\$?
cat /tmp/out
if [ \$rc = 0 ] && grep -q -- '--- PASS' /tmp/out && ! grep -q -- '--- SKIP' /tmp/out; then
	echo "DGVMTEST: PASS"
else
	echo "DGVMTEST: FAIL (exit \$rc)"
fi
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet) > "$WORK/initramfs.cpio"

timeout "${DG_VMTEST_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -cpu max -m 1024M -smp 1 \
	-nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null >"$WORK/console" 2>&1 || true
tr -d '\r' <"$WORK/console"
grep -q '^DGVMTEST: PASS' "$WORK/console" && exit 0
grep -q '^DGVMTEST: ' "$WORK/console" || echo "DGVMTEST: FAIL (no result line from the VM)"
exit 1
