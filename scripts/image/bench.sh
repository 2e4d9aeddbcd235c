#!/bin/sh
# make bench-image (and the end of make bench, as root): the install image's
# figures. Builds the image (cached per input hash) and runs the qemu tests
# that measure: image and bundle size, boot to the first RADIUS answer,
# install time (a one-box fleet update: verify, chunk, reassemble, write,
# reboot), first boot to doctor with the empty data partition, and rollback time (a
# bundle whose deskgated exits: boot, health-gate deadline, reboot, old slot
# serving). qemu runs under TCG, so times are upper bounds for real hardware.
set -eu
cd "$(dirname "$0")/../.."
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT INT TERM
go test -count=1 -timeout 40m -v -run 'TestImageBootsAndRefusesForeignBundle|TestImageUpdateAndRollback|TestImageFirstBoot' \
	./appliance/update/vmtest/ >"$LOG" 2>&1 || { tail -n 60 "$LOG"; exit 1; }
dir=$(ls -td "${TMPDIR:-/tmp}"/deskgate-imagetest/*/ | head -n1)
echo "== install image"
sed -n '1,4p' "$dir/image/contents.txt"
printf 'disk.img gzip -1: %s bytes\n' "$(gzip -1 -c "$dir/image/disk.img" | wc -c)"
grep -o 'BENCH .*' "$LOG" | sed 's/^BENCH /image /'
