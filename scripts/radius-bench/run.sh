#!/usr/bin/env bash
# RADIUS benchmark: deskgate's appliance/radius against FreeRADIUS 3.2 from
# Debian, same machine, same load generator (cmd/radload: a few UDP sockets
# × 256 ids, like a NAS), same 10,000 users. Prints per-run figures, medians
# of RUNS runs and the deskgate/FreeRADIUS ratios.
#
#   scripts/radius-bench/run.sh            # RUNS=3 DURATION=3s MODES=pap,mschap,acct
#
# Server CPU per request comes from /proc/<pid>/stat (utime+stime) over each
# measurement window. Both servers run as separate processes on the 2 cores
# the generator also uses, so compare CPU per request, not only rates.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-3s}
MODES=${MODES:-pap,mschap,acct}
USERS=${USERS:-10000}
SECRET=bench-secret
DG_AUTH=127.0.0.1:21812 DG_ACCT=127.0.0.1:21813
FR_AUTH_PORT=31812 FR_ACCT_PORT=31813 FR_INNER_PORT=31820

WORK=$(mktemp -d /tmp/radius-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (other tenants add noise to latency)"
echo "== building radload"
(cd "$ROOT" && go build -o "$WORK/radload" ./cmd/radload)

echo "== deskgate: temporary store, $USERS accounts, durable (bbolt Batch) accounting"
mkdir -p "$WORK/dg"
"$WORK/radload" serve -auth $DG_AUTH -acct $DG_ACCT -users "$USERS" -secret $SECRET -dir "$WORK/dg" >"$WORK/dg.out" 2>"$WORK/dg.err" &
PIDS+=($!)
DG_PID=$!

FR_PID=0
if command -v freeradius >/dev/null; then
	echo "== FreeRADIUS $(freeradius -v 2>/dev/null | sed -n 's/.*Version \([0-9.]*\).*/\1/p' | head -1): files module, $USERS users, stock threads"
	RADDB="$WORK/raddb"
	cp -a /etc/freeradius/3.0 "$RADDB"
	mkdir -p "$WORK/frlog/radacct" "$WORK/frrun"
	"$WORK/radload" users -users "$USERS" -o "$RADDB/mods-config/files/authorize"
	cat >"$RADDB/clients.conf" <<CONF
client bench {
	ipaddr = 127.0.0.0/8
	secret = $SECRET
	require_message_authenticator = yes
}
CONF
	sed -i \
		-e "s|^logdir = .*|logdir = $WORK/frlog|" \
		-e "s|^run_dir = .*|run_dir = $WORK/frrun|" \
		-e 's|^\(\s*\)user = freerad|\1#user = freerad|' \
		-e 's|^\(\s*\)group = freerad|\1#group = freerad|' \
		"$RADDB/radiusd.conf"
	# default site: IPv4 loopback only, on the bench ports.
	awk -v a=$FR_AUTH_PORT -v c=$FR_ACCT_PORT '
		/^listen \{/ { n++ }
		/^\tipaddr = \*/ { sub(/\*/, "127.0.0.1") }
		/^\tipv6addr = ::/ { sub(/::.*/, "::1") }
		/^\tport = 0/ { if (n == 1 || n == 3) sub(/0/, a); else sub(/0/, c) }
		{ print }' "$RADDB/sites-available/default" >"$RADDB/sites-enabled/default.new"
	rm -f "$RADDB/sites-enabled/default"
	mv "$RADDB/sites-enabled/default.new" "$RADDB/sites-enabled/default"
	sed "s/port = 18120/port = $FR_INNER_PORT/" "$RADDB/sites-available/inner-tunnel" >"$RADDB/sites-enabled/inner-tunnel.new"
	rm -f "$RADDB/sites-enabled/inner-tunnel"
	mv "$RADDB/sites-enabled/inner-tunnel.new" "$RADDB/sites-enabled/inner-tunnel"
	if ! freeradius -C -d "$RADDB" >"$WORK/fr-check.log" 2>&1; then
		echo "FreeRADIUS config check failed:"; tail -20 "$WORK/fr-check.log"; exit 1
	fi
	freeradius -f -d "$RADDB" -l "$WORK/frlog/radius.log" &
	PIDS+=($!)
	FR_PID=$!
else
	echo "== FreeRADIUS not installed: deskgate only"
fi

for i in $(seq 50); do
	grep -q ready "$WORK/dg.out" 2>/dev/null && break
	sleep 0.1
done
grep -q ready "$WORK/dg.out" || { echo "deskgate did not start:"; cat "$WORK/dg.err"; exit 1; }
sleep 1

echo "== sanity: one PAP login each"
for target in $DG_AUTH $([ "$FR_PID" != 0 ] && echo 127.0.0.1:$FR_AUTH_PORT); do
	printf 'User-Name = "user00042"\nUser-Password = "pass00042"\nMessage-Authenticator = 0x00\n' |
		radclient -x -r 1 -t 2 "$target" auth $SECRET | grep -E '^Received|^\(0\)' || { echo "no answer from $target"; exit 1; }
done

echo "== load (runs=$RUNS duration=$DURATION per run; half load = half of the lower median saturation rate, same for both servers)"
"$WORK/radload" bench -secret $SECRET -users "$USERS" -runs "$RUNS" -duration "$DURATION" -modes "$MODES" \
	-deskgate-auth $DG_AUTH -deskgate-acct $DG_ACCT -deskgate-pid $DG_PID \
	-freeradius-auth 127.0.0.1:$FR_AUTH_PORT -freeradius-acct 127.0.0.1:$FR_ACCT_PORT -freeradius-pid $FR_PID
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
grep -i "level=error" "$WORK/dg.err" | head -5 || true
