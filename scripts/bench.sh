#!/bin/sh
# make bench: the benchmark figures the issues ask for, as medians of
# COUNT runs (default 3). The machine is shared and noisy: compare figures
# from the same run, and read ratios rather than absolute numbers.
set -eu
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
OUT=${BENCH_OUT:-bench.out}
: >"$OUT"

run() { # package, benchmark regexp, benchtime
	echo "== go test $1 -bench '$2'" | tee -a "$OUT"
	go test "$1" -run '^$' -bench "$2" -benchtime "$3" -count "$COUNT" -timeout 60m | tee -a "$OUT"
}

# Member sync (issue 2). PollQuiet10k: API calls of one poll of a quiet
# 10,000-member space (issue 10: GET /memberships rejects modifiedAt).
run ./appliance 'Import10k|Poll10Changes|PollQuiet10k' 1x
run ./appliance 'WebhookAck' 300x
run ./appliance 'Console50k' 1x # console dashboard and member search, p50/p99 at 50,000 members
run ./cmd/deskgated 'DaemonCached' 1x # RSS and start-to-serving at 10,000 and 50,000 members
run ./appliance/store '.' 1x
run ./appliance/policy 'Decide' 1s

# The fleet (issue 11): replication latency a → c, catch-up after a
# partition with 10,000 changes, memory per link, steady bytes per second
# per link with 10,000 members and 1,000 live sessions.
run ./appliance/peer 'FleetReplicationLatency' 300x
run ./appliance/peer 'FleetCatchUp10k|FleetMemoryPerPeer|FleetSteadyBytes' 1x
# Per-origin entry signatures: sign and verify, entries/s.
run ./appliance/peer 'EntrySignature' 2000x

# The EAP server's RSA-2048 signature (one per full handshake with an RSA
# certificate): crypto/rsa against the OpenSSL signer deskgated ships
# (internal/rsasign, cgo and the openssl tag), ns per PSS signature.
echo "== go test ./internal/rsasign -bench SignPSS (cgo, openssl tag)" | tee -a "$OUT"
CGO_ENABLED=1 go test -tags openssl,netgo,osusergo ./internal/rsasign -run '^$' -bench SignPSS -benchtime 500x -count "$COUNT" | tee -a "$OUT"

# The gateway (issue 6); root only.
if [ "$(id -u)" = 0 ]; then
	run ./netcfg 'AllowRevoke1000' 1000x
	run ./netcfg 'Reconcile1000' 3x
fi

# The daemon itself against FreeRADIUS, like for like (issue 10): PAP,
# MS-CHAPv2, accounting (with the map-backed radload serve beside them and
# the half-load CPU per request), full PEAP, TTLS/PAP and EAP-TLS with
# P-256 and RSA-2048 certificates; ratios in logins per CPU-second.
if [ -x scripts/radius-bench/daemon.sh ]; then
	echo "== scripts/radius-bench/daemon.sh" | tee -a "$OUT"
	RUNS=$COUNT scripts/radius-bench/daemon.sh | tee -a "$OUT"
fi

# The EAP library behind its minimal benchmark front (benchsrv), with
# session resumption: EAP_BENCHSRV=1.
if [ -n "${EAP_BENCHSRV:-}" ] && [ -x appliance/eap/bench.sh ]; then
	echo "== appliance/eap/bench.sh" | tee -a "$OUT"
	appliance/eap/bench.sh | tee -a "$OUT"
fi

echo
echo "== calls per quiet poll at 10,000 members (median of $COUNT)"
awk '/^BenchmarkPollQuiet10k/ { for (i = 3; i < NF; i++) if ($(i+1) == "api-calls/quiet-poll") print $i }' "$OUT" |
	sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] " API calls per quiet poll"; else print "not measured" }'

echo
# The install image under qemu (issue 12); root only, single runs (minutes each).
if [ "$(id -u)" = 0 ] && [ "${BENCH_IMAGE:-1}" = 1 ]; then
	scripts/image/bench.sh | tee -a "$OUT"
fi

echo "== medians over $COUNT runs"
awk '
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) { key = name " " $(i+1); vals[key] = vals[key] " " $i; keys[key] = 1 }
}
END {
	for (k in keys) {
		n = split(vals[k], a, " ")
		# sort a[1..n]
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		printf "%-70s %14.3f\n", k, m
	}
}' "$OUT" | sort
