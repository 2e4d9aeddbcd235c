#!/bin/sh
# make image: assembles the deskgate install image from Debian packages with
# the same board files Buildroot uses (buildroot/board/deskgate): Debian's
# kernel (+ a small initramfs for its modular drivers), busybox-static, the
# static deskgated/deskgate, RAUC, grub-editenv and dbus-daemon, the
# gateway's iptables (nft), ipset, tc and dnsmasq, with the shared libraries
# they link (ldd), GRUB i386-pc; a squashfs root slot.
#
# Usage: scripts/image/build.sh [OUT]     (default: build/image)
# Env:   VERSION            version string (default: git describe)
#        DESKGATED          use this deskgated binary instead of building one
#        DESKGATE_KEYS_DIR  update keys (default OUT/keys, created if absent)
#        DESKGATE_RAUC_KEYRING  CA the image trusts (default KEYS/ca.cert.pem)
#        DESKGATE_NO_BUNDLE=1  skip update.raucb
# Output: OUT/disk.img (boot it: scripts/image/run.sh), OUT/rootfs.squashfs,
#         OUT/update.raucb (a bundle of the same root), OUT/contents.txt.
# Needs (Debian): linux-image-amd64 busybox-static rauc dbus-daemon grub-pc-bin
#         grub-common genimage squashfs-tools e2fsprogs cpio openssl iptables
#         ipset iproute2 dnsmasq-base, go.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BOARD=$ROOT/buildroot/board/deskgate
OUT=$(mkdir -p "${1:-$ROOT/build/image}" && cd "${1:-$ROOT/build/image}" && pwd)
VERSION=${VERSION:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)}
KVER=${KVER:-$(ls /lib/modules | grep -- '-amd64$' | sort -V | tail -n1)}
export DESKGATE_KEYS_DIR=${DESKGATE_KEYS_DIR:-$OUT/keys}
export DESKGATE_VERSION=$VERSION
PATH=$PATH:/sbin:/usr/sbin

for t in busybox rauc grub-editenv grub-mkimage dbus-daemon genimage mksquashfs mkfs.ext4 cpio openssl xtables-nft-multi ipset tc dnsmasq; do
	command -v "$t" >/dev/null || { echo "image: $t missing (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
done
[ -r "/boot/vmlinuz-$KVER" ] || { echo "image: /boot/vmlinuz-$KVER missing (apt-get install linux-image-amd64)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/dg-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
T=$WORK/target
mkdir -p "$T/bin" "$T/sbin" "$T/usr/bin" "$T/usr/sbin" "$T/usr/lib" "$T/lib" "$T/boot" "$T/etc"

# The daemon and the CLI, static.
LDFLAGS="-s -w -X github.com/deskgate/deskgate/appliance.Version=$VERSION"
# deskgated signs RSA through OpenSSL (scripts/gobuild.sh); an image
# without it would be 3x slower per full login with an RSA certificate.
(cd "$ROOT" && DESKGATE_OPENSSL=${DESKGATE_OPENSSL:-1} TAGS=timetzdata LDFLAGS="$LDFLAGS" scripts/gobuild.sh -trimpath -o "$T/usr/bin/" ./cmd/deskgate ./cmd/deskgated)
[ -n "${DESKGATED:-}" ] && install -m 0755 "$DESKGATED" "$T/usr/bin/deskgated"
mkdir -p "$T/etc/deskgate"
echo "$VERSION" >"$T/etc/deskgate/version"

# busybox userland.
cp "$(command -v busybox)" "$T/bin/busybox"
for a in $("$T/bin/busybox" --list-full); do
	[ -e "$T/$a" ] || ln -s /bin/busybox "$T/$a"
done

# Dynamically linked tools and their libraries.
copy_bin() { # src dst
	install -D -m 0755 "$1" "$T$2"
	ldd "$1" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
		[ -e "$T$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$T$lib"
	done
}
copy_bin "$(command -v rauc)" /usr/bin/rauc
copy_bin "$(command -v grub-editenv)" /usr/bin/grub-editenv
copy_bin "$(command -v dbus-daemon)" /usr/bin/dbus-daemon
copy_bin "$(command -v mke2fs)" /sbin/mkfs.ext4
copy_bin "$(command -v unsquashfs 2>/dev/null || command -v mksquashfs)" /usr/bin/"$(basename "$(command -v unsquashfs 2>/dev/null || command -v mksquashfs)")"
# The gateway's tools (netcfg): iptables with the nf_tables backend (as the
# defconfigs' BR2_PACKAGE_IPTABLES_NFTABLES), its match/target extensions
# (dlopen'ed, so ldd of the binary does not list them), ipset, iproute2's
# tc (in place of busybox's applet) and dnsmasq.
copy_bin "$(readlink -f "$(command -v xtables-nft-multi)")" /usr/sbin/xtables-nft-multi
for a in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sfn xtables-nft-multi "$T/usr/sbin/$a"
	rm -f "$T/sbin/$a" "$T/bin/$a" "$T/usr/bin/$a"
done
XT=$(dirname "$(readlink -f "$(ldd "$(command -v xtables-nft-multi)" | awk '/libxtables/{print $3}')")")/xtables
for so in "$XT"/*.so; do copy_bin "$so" "$XT/${so##*/}"; done
rm -f "$T/sbin/tc" "$T/bin/tc" "$T/usr/sbin/tc" "$T/usr/bin/tc"
copy_bin "$(command -v ipset)" /usr/sbin/ipset
copy_bin "$(command -v tc)" /usr/sbin/tc
copy_bin "$(command -v dnsmasq)" /usr/sbin/dnsmasq
# TLS roots for OfficeRnD and SMTP.
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$T/etc/ssl/certs/ca-certificates.crt"
# RAUC's verity bundles go through losetup/mount of the bundle (busybox's
# will do) and dm-verity (the kernel); rauc also runs `mount` for slots.
install -d -m 0755 "$T/var/lib/dbus" "$T/usr/share/dbus-1"

# The kernel and, because Debian's drivers are modules, an initramfs that
# loads them and switches to the squashfs root.
cp "/boot/vmlinuz-$KVER" "$T/boot/bzImage"
I=$WORK/initramfs
mkdir -p "$I/bin" "$I/lib/modules" "$I/proc" "$I/sys" "$I/dev"
cp "$(command -v busybox)" "$I/bin/busybox"
cp "$BOARD/initramfs/init" "$I/init"
MODS="virtio_pci virtio_blk virtio_net ahci sd_mod nvme e1000 squashfs ext4 loop dm_verity"
# The gateway's kernel side (as linux.fragment builds in): VLANs, nf_tables
# with the xtables compatibility layer, NAT, ipsets, tc shaping.
MODS="$MODS 8021q bridge ifb nf_tables nft_compat nft_chain_nat nf_nat nf_conntrack xt_mark xt_mac xt_set xt_connmark
	xt_CLASSIFY xt_MASQUERADE xt_conntrack xt_comment xt_tcpudp ip_set ip_set_hash_ip ip_set_hash_net ip_set_hash_mac
	sch_htb sch_fq_codel sch_ingress cls_u32 cls_fw act_mirred"
for m in $MODS; do
	modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' >"$WORK/mods"
while read -r f; do
	cp "$f" "$I/lib/modules/"
	basename "$f" >>"$I/lib/modules/load.order"
done <"$WORK/mods"
(cd "$I" && find . | cpio -o -H newc --quiet) | gzip -9 >"$T/boot/initrd.img"

# The overlay and post-build, as Buildroot would.
cp -a "$BOARD/overlay/." "$T/"
if [ -z "${DESKGATE_RAUC_KEYRING:-}" ]; then
	"$BOARD/mkkeys.sh" "$DESKGATE_KEYS_DIR"
	DESKGATE_RAUC_KEYRING=$DESKGATE_KEYS_DIR/ca.cert.pem
fi
export DESKGATE_RAUC_KEYRING
"$BOARD/post-build.sh" "$T" x86_64

rm -f "$OUT/rootfs.squashfs"
mksquashfs "$T" "$OUT/rootfs.squashfs" -comp xz -all-root -noappend -quiet >/dev/null

# GRUB for BIOS boot: boot.img in the MBR, grub.img in the gap after it.
cp /usr/lib/grub/i386-pc/boot.img "$OUT/boot.img"
grub-mkimage -O i386-pc -o "$OUT/grub.img" -p "(hd0,msdos1)/grub" -c "$BOARD/grub-builtin.cfg" \
	boot biosdisk part_msdos ext2 squash4 linux normal configfile loadenv test echo reboot

"$BOARD/post-image.sh" "$OUT" x86_64

{
	echo "deskgate image $VERSION (kernel $KVER)"
	printf 'disk.img %s bytes (apparent), %s KiB allocated\n' "$(stat -c %s "$OUT/disk.img")" "$(du -k "$OUT/disk.img" | cut -f1)"
	printf 'rootfs.squashfs %s bytes\n' "$(stat -c %s "$OUT/rootfs.squashfs")"
	[ -e "$OUT/update.raucb" ] && printf 'update.raucb %s bytes\n' "$(stat -c %s "$OUT/update.raucb")"
	echo "root slot contents (largest first):"
	(cd "$T" && find . -type f -printf '%s %p\n' | sort -rn | head -n 25)
} >"$OUT/contents.txt"
cat "$OUT/contents.txt" | head -n 4
