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

# Member sync (issue 2).
run ./appliance 'Import10k|Poll10Changes' 1x
run ./appliance 'WebhookAck' 300x
run ./cmd/deskgated 'DaemonCached' 1x
run ./appliance/store '.' 1x
run ./appliance/policy 'Decide' 1s

# The gateway (issue 6); root only.
if [ "$(id -u)" = 0 ]; then
	run ./netcfg 'AllowRevoke1000' 1000x
	run ./netcfg 'Reconcile1000' 3x
fi

# RADIUS against FreeRADIUS (issue 3), when its harness is present.
if [ -x scripts/radius-bench/run.sh ]; then
	echo "== scripts/radius-bench/run.sh" | tee -a "$OUT"
	scripts/radius-bench/run.sh | tee -a "$OUT"
fi

# WPA-Enterprise against FreeRADIUS (issue 4).
if [ -x appliance/eap/bench.sh ]; then
	echo "== appliance/eap/bench.sh" | tee -a "$OUT"
	appliance/eap/bench.sh | tee -a "$OUT"
fi

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
