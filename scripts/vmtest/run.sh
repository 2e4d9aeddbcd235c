#!/bin/sh
# Boots Debian's kernel under qemu (TCG, no NIC) with a tiny initramfs that
# holds busybox, the 802.1Q modules and netcfg's test binary, runs the VLAN
# test inside and prints its output followed by one line
#   DGVMTEST: PASS   or   DGVMTEST: FAIL ...
# Exit status 0 only on PASS.
#
# The modules: 8021q (+ garp, mrp, stp, llc), dummy for a trunk, and the tc
# pieces for per-network shaping on VLAN links (ifb, htb, ingress, u32,
# mirred); Debian's kernel has fq_codel built in. The ipset modules (with
# hash:ip,mac, which the test host lacks) are for TestIPMACGuest.
# Needs: qemu-system-x86 linux-image-amd64 busybox-static cpio (Debian), go.
# Usage: scripts/vmtest/run.sh [test-regexp]   (default ^TestVLANGuest$)
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${1:-'^TestVLANGuest$'}
KVER=${DG_VMTEST_KVER:-$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1)}
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER/kernel
BUSYBOX=$(command -v busybox || true)

for f in "$KERNEL" "$MODDIR/net/8021q/8021q.ko"; do
	[ -e "$f" ] || { echo "DGVMTEST: FAIL missing $f (apt-get install linux-image-amd64)"; exit 1; }
done
[ -n "$BUSYBOX" ] || { echo "DGVMTEST: FAIL busybox missing (apt-get install busybox-static)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "DGVMTEST: FAIL qemu-system-x86_64 missing"; exit 1; }
command -v cpio >/dev/null || { echo "DGVMTEST: FAIL cpio missing"; exit 1; }

WORK=$(mktemp -d /tmp/dg-vmtest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
R=$WORK/root
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/run/netns" "$R/lib/modules"
cp "$BUSYBOX" "$R/bin/busybox"
for m in net/802/stp.ko net/llc/llc.ko net/802/garp.ko net/802/mrp.ko net/8021q/8021q.ko drivers/net/dummy.ko \
	drivers/net/ifb.ko net/sched/sch_htb.ko net/sched/sch_ingress.ko net/sched/cls_u32.ko net/sched/act_mirred.ko \
	net/netfilter/nfnetlink.ko net/netfilter/ipset/ip_set.ko net/netfilter/ipset/ip_set_hash_ip.ko \
	net/netfilter/ipset/ip_set_hash_ipmac.ko; do
	cp "$MODDIR/$m" "$R/lib/modules/"
done
(cd "$ROOT" && CGO_ENABLED=0 go test -c -o "$R/netcfg.test" ./netcfg)

cat > "$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in llc stp garp mrp 8021q dummy ifb sch_htb sch_ingress cls_u32 act_mirred nfnetlink ip_set ip_set_hash_ip ip_set_hash_ipmac; do insmod /lib/modules/\$m.ko || echo "insmod \$m failed"; done
ip link set lo up
DG_VMTEST_GUEST=1 /netcfg.test -test.run '$RUN' -test.v -test.count=1 >/tmp/out 2>&1
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

timeout "${DG_VMTEST_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -cpu max -m 512M -smp 1 \
	-nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" \
	-append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null >"$WORK/console" 2>&1 || true
tr -d '\r' <"$WORK/console"
grep -q '^DGVMTEST: PASS' "$WORK/console" && exit 0
grep -q '^DGVMTEST: ' "$WORK/console" || echo "DGVMTEST: FAIL (no result line from the VM)"
exit 1
