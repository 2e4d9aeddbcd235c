#!/usr/bin/env bash
# The daemon against FreeRADIUS, like for like: `deskgated` itself (its
# store holding 10,000 accounts imported from the OfficeRnD simulator)
# and FreeRADIUS 3.2 (the same 10,000 users in its files module) answer
# the same load on the same cores, in the same run:
#   - PAP, MS-CHAPv2 and accounting from cmd/radload (a NAS-like load
#     generator), at saturation and at half load, with the map-backed
#     `radload serve` (appliance/radius over an in-memory directory)
#     measured beside them;
#   - full PEAP/MS-CHAPv2, full EAP-TTLS/PAP and EAP-TLS from parallel
#     `eapol_test -r N` processes, once with P-256 and once with RSA-2048
#     certificates: both servers present the same server certificate and
#     CA, and FreeRADIUS proposes PEAP first (default_eap_type = peap).
# Every figure is server CPU per request or login: RADIUS from
# /proc/<pid>/stat (utime+stime over the window), EAP from the sum of the
# server's threads' /proc/<pid>/task/*/schedstat (ns), each EAP row starting
# only once the server is idle; ratios are requests (logins) per
# CPU-second, deskgated over FreeRADIUS: > 1 means deskgated does more with
# the same CPU.
#
#   scripts/radius-bench/daemon.sh   # RUNS=3 DURATION=3s USERS=10000 P=4 R=50 KEYS="p256 rsa2048"
#                                    # PARTS="radius eap" (or "hold": start both and wait)  CPUPROFILE=file (deskgated, whole run)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-3}
DURATION=${DURATION:-3s}
USERS=${USERS:-10000}
P=${P:-4}
R=${R:-50}
R1=${R1:-10} # TLS 1.3 rows: logins per parallel loop, one eapol_test process each
KEYS=${KEYS:-p256 rsa2048}
PARTS=${PARTS:-radius eap}
MODES=${MODES:-pap,mschap,acct}
SECRET=bench-secret
DG_AUTH_PORT=21812 DG_ACCT_PORT=21813
MAP_AUTH_PORT=22812 MAP_ACCT_PORT=22813
FR_AUTH_PORT=31812 FR_ACCT_PORT=31813 FR_INNER_PORT=31820
SIM_ADDR=127.0.0.1:28990

for tool in freeradius eapol_test radclient openssl; do
	command -v $tool >/dev/null || { echo "$tool missing (scripts/install-test-deps.sh installs it)"; exit 1; }
done

WORK=$(mktemp -d /tmp/daemon-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime in ticks
# cpuns PID: the process's CPU time in ns, summed over its live threads'
# schedstat (exact on-CPU time, where utime+stime are 10 ms samples), then
# a space and the sorted thread ids (a thread that exits takes its time
# with it: eapload sees that and falls back to ticks).
cpuns() {
	local t n s=0 tids=()
	for t in /proc/"$1"/task/*; do
		read -r n _ <"$t/schedstat" 2>/dev/null || continue
		s=$((s + n))
		tids+=("${t##*/}")
	done
	echo "$s $(printf '%s\n' "${tids[@]}" | sort -n | tr '\n' ,)"
}
# idle PID: wait (up to 60 s) until the process has used under 2 ms of CPU
# in the last second: the daemon's post-start work (mirror reconcile,
# decoding members, store writes, memory trim) must not land in the first
# measured row.
idle() {
	local a b i
	a=$(cpuns "$1"); a=${a%% *}
	for i in $(seq 240); do
		sleep 0.25
		b=$(cpuns "$1"); b=${b%% *}
		if [ $((i % 4)) = 0 ]; then
			[ $((b - a)) -lt 2000000 ] && return 0
			a=$b
		fi
	done
	echo "WARNING: pid $1 still busy after 60 s ($(((b - a) / 1000000)) ms CPU in the last second)" >&2
}

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building deskgated, officernd-sim, radload"
(cd "$ROOT" && scripts/gobuild.sh -o "$WORK/bin/" ./cmd/deskgated ./cmd/officernd-sim ./cmd/radload)
echo "== deskgated build: $("$WORK/bin/deskgated" -version | tr '\n' ' ')"

# --- certificates: one CA, server and client certificate per key type ---
certs() { # $1 = p256 | rsa2048
	local d="$WORK/certs/$1"
	mkdir -p "$d"
	local newkey
	case $1 in
	p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
	rsa2048) newkey=(-newkey rsa:2048) ;;
	esac
	openssl req -x509 "${newkey[@]}" -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 3650 \
		-subj "/CN=bench CA $1" -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
	for who in server client; do
		local cn=radius.bench.example eku=serverAuth san="-addext subjectAltName=DNS:radius.bench.example"
		[ $who = client ] && { cn=user00042; eku=clientAuth; san=""; }
		openssl req "${newkey[@]}" -nodes -keyout "$d/$who.key" -out "$d/$who.csr" -subj "/CN=$cn" 2>/dev/null
		printf 'extendedKeyUsage=%s\n%s\n' $eku "$([ $who = server ] && echo subjectAltName=DNS:radius.bench.example)" >"$d/$who.ext"
		openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
			-extfile "$d/$who.ext" -out "$d/$who.pem" 2>/dev/null
	done
	chmod 600 "$d"/*.key
}

# --- the OfficeRnD simulator with USERS accounts of known passwords ---
"$WORK/bin/officernd-sim" -listen $SIM_ADDR -seed=false -extra-members "$USERS" -bench-accounts -log-level warn >"$WORK/sim.log" 2>&1 &
PIDS+=($!)
printf '%s' deskgate-demo-secret >"$WORK/officernd.secret"
printf '%s' $SECRET >"$WORK/nas.secret"
chmod 600 "$WORK"/*.secret

DG_PID=0
start_dg() { # $1 = key type
	local d="$WORK/certs/$1"
	mkdir -p "$WORK/dg/eap"
	# The daemon's local CA issues member certificates (EAP-TLS): make it
	# the bench CA so both servers trust the same client certificate.
	cp "$d/ca.pem" "$WORK/dg/eap/ca.pem"
	cp "$d/ca.key" "$WORK/dg/eap/ca.key"
	cat >"$WORK/deskgate.yaml" <<CONF
data_dir: $WORK/dg
log: {level: warn}
admin: {listen: "127.0.0.1:0", socket: $WORK/deskgate.sock}
officernd:
  client_id: deskgate-demo
  client_secret: {file: $WORK/officernd.secret}
  org_slug: demo-space
  api_base: http://$SIM_ADDR/api/v2
  token_url: http://$SIM_ADDR/oauth/token
sync: {interval: 1h, webhooks: false}
users: {welcome_email: false, username_format: "{email_local}", password_policy: property}
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Dedicated Desk, group: premium}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22}
roaming: {policy: all}
radius:
  auth_listen: ["127.0.0.1:$DG_AUTH_PORT"]
  acct_listen: ["127.0.0.1:$DG_ACCT_PORT"]
  clients:
    - {name: bench, address: 127.0.0.0/8, secret: {file: $WORK/nas.secret}, location: Downtown}
  eap:
    server_name: radius.bench.example
    cert_file: $d/server.pem
    key_file: $d/server.key
    trust_file: $d/ca.pem
smtp: {mailbox_dir: $WORK/mailbox, from: wifi@example.com}
CONF
	local t0
	t0=$(date +%s.%N)
	"$WORK/bin/deskgated" -config "$WORK/deskgate.yaml" ${CPUPROFILE:+-cpuprofile "$CPUPROFILE.$1"} >>"$WORK/dg.log" 2>&1 &
	DG_PID=$!
	PIDS+=($DG_PID)
	# Serving means: the last bulk account gets Access-Accept.
	local last
	last=$(printf 'user%05d' $((USERS - 1)))
	for _ in $(seq 1200); do
		if printf 'User-Name = "%s"\nUser-Password = "pass%s"\nMessage-Authenticator = 0x00\n' "$last" "${last#user}" |
			radclient -r 1 -t 1 127.0.0.1:$DG_AUTH_PORT auth $SECRET 2>/dev/null | grep -q Access-Accept; then
			echo "== deskgated ($1 certificate) serves $USERS accounts $(echo "$(date +%s.%N) - $t0" | bc -l | xargs printf '%.1f') s after start; RSS $(awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$DG_PID/status)"
			return 0
		fi
		kill -0 $DG_PID 2>/dev/null || break
		sleep 0.5
	done
	echo "deskgated did not serve:"; tail -20 "$WORK/dg.log"; exit 1
}
stop_dg() { kill $DG_PID; wait $DG_PID 2>/dev/null || true; }

FR_PID=0
start_fr() { # $1 = key type
	local d="$WORK/certs/$1" RADDB="$WORK/raddb"
	rm -rf "$RADDB"
	cp -a /etc/freeradius/3.0 "$RADDB"
	mkdir -p "$WORK/frlog/radacct" "$WORK/frrun"
	[ -f "$WORK/authorize" ] || "$WORK/bin/radload" users -users "$USERS" -o "$WORK/authorize"
	cp "$WORK/authorize" "$RADDB/mods-config/files/authorize"
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
	awk -v a=$FR_AUTH_PORT -v c=$FR_ACCT_PORT '
		/^listen \{/ { n++ }
		/^\tipaddr = \*/ { sub(/\*/, "127.0.0.1") }
		/^\tipv6addr = ::/ { sub(/::.*/, "::1") }
		/^\tport = 0/ { if (n == 1 || n == 3) sub(/0/, a); else sub(/0/, c) }
		{ print }' "$RADDB/sites-available/default" >"$WORK/default"
	rm -f "$RADDB/sites-enabled/default"
	mv "$WORK/default" "$RADDB/sites-enabled/default"
	sed "s/port = 18120/port = $FR_INNER_PORT/" "$RADDB/sites-available/inner-tunnel" >"$WORK/inner"
	rm -f "$RADDB/sites-enabled/inner-tunnel"
	mv "$WORK/inner" "$RADDB/sites-enabled/inner-tunnel"
	# EAP like deskgate: PEAP proposed first, the same certificates.
	# tls_max_version 1.3 lets EAP-TLS negotiate TLS 1.3 when the client
	# offers it (the TLS 1.3 rows); the other rows' clients offer 1.2 only.
	sed -e 's|^\(\s*default_eap_type = \).*|\1peap|' \
		-e 's|^\(\s*tls_max_version = \).*|\1"1.3"|' \
		-e "s|^\(\s*private_key_file = \).*|\1$d/server.key|" \
		-e "s|^\(\s*certificate_file = \).*|\1$d/server.pem|" \
		-e "s|^\(\s*ca_file = \).*|\1$d/ca.pem|" \
		-e 's|^\(\s*private_key_password = \).*|#&|' \
		"$RADDB/mods-available/eap" >"$WORK/eap"
	rm -f "$RADDB/mods-enabled/eap"
	mv "$WORK/eap" "$RADDB/mods-enabled/eap"
	if ! freeradius -C -d "$RADDB" >"$WORK/fr-check.log" 2>&1; then
		echo "FreeRADIUS config check failed:"; tail -20 "$WORK/fr-check.log"; exit 1
	fi
	freeradius -f -d "$RADDB" -l "$WORK/frlog/radius.log" &
	FR_PID=$!
	PIDS+=($FR_PID)
	for _ in $(seq 100); do
		printf 'User-Name = "user00042"\nUser-Password = "pass00042"\nMessage-Authenticator = 0x00\n' |
			radclient -r 1 -t 1 127.0.0.1:$FR_AUTH_PORT auth $SECRET 2>/dev/null | grep -q Access-Accept && return 0
		sleep 0.2
	done
	echo "FreeRADIUS did not answer:"; tail -20 "$WORK/frlog/radius.log"; exit 1
}
stop_fr() { kill $FR_PID; wait $FR_PID 2>/dev/null || true; }

for k in $KEYS; do certs "$k"; done
first=${KEYS%% *}
start_dg "$first"
start_fr "$first"

if [[ " $PARTS " == *" radius "* ]]; then
	echo "== map-backed appliance/radius (radload serve): the same accounts, decisions precomputed in a map"
	mkdir -p "$WORK/map"
	"$WORK/bin/radload" serve -auth 127.0.0.1:$MAP_AUTH_PORT -acct 127.0.0.1:$MAP_ACCT_PORT -users "$USERS" -secret $SECRET -dir "$WORK/map" >"$WORK/map.out" 2>"$WORK/map.err" &
	MAP_PID=$!
	PIDS+=($MAP_PID)
	for _ in $(seq 100); do grep -q ready "$WORK/map.out" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$WORK/map.out" || { echo "radload serve did not start:"; cat "$WORK/map.err"; exit 1; }
	echo "== RADIUS load (runs=$RUNS duration=$DURATION; half load = half of the lowest saturated rate, the same for every server)"
	"$WORK/bin/radload" bench -secret $SECRET -users "$USERS" -runs "$RUNS" -duration "$DURATION" -modes "$MODES" \
		-deskgate-auth 127.0.0.1:$DG_AUTH_PORT -deskgate-acct 127.0.0.1:$DG_ACCT_PORT -deskgate-pid $DG_PID \
		-map-auth 127.0.0.1:$MAP_AUTH_PORT -map-acct 127.0.0.1:$MAP_ACCT_PORT -map-pid $MAP_PID \
		-freeradius-auth 127.0.0.1:$FR_AUTH_PORT -freeradius-acct 127.0.0.1:$FR_ACCT_PORT -freeradius-pid $FR_PID
	kill $MAP_PID
fi

if [[ " $PARTS " == *" hold "* ]]; then # keep both servers up for profiling by hand
	echo "== holding: deskgated pid $DG_PID (socket $WORK/deskgate.sock, /debug/pprof), FreeRADIUS pid $FR_PID; kill $$ to end"
	sleep infinity &
	PIDS+=($!) # cleanup's wait would otherwise wait for it forever
	wait $!
fi
[[ " $PARTS " == *" eap "* ]] || exit 0

# --- EAP: parallel eapol_test -r R against one server ---
eapconf() { # $1 file $2 method $3 key type
	local d="$WORK/certs/$3"
	case $2 in
	peap) body='eap=PEAP
identity="user00042"
anonymous_identity="anonymous"
password="pass00042"
phase1="peaplabel=0 tls_disable_session_ticket=1"
phase2="auth=MSCHAPV2"' ;;
	ttls) body='eap=TTLS
identity="user00042"
anonymous_identity="anonymous"
password="pass00042"
phase1="tls_disable_session_ticket=1"
phase2="auth=PAP"' ;;
	tls) body="eap=TLS
identity=\"user00042\"
client_cert=\"$d/client.pem\"
private_key=\"$d/client.key\"
phase1=\"tls_disable_session_ticket=1\"" ;;
	esac
	# peap13 / tls13: the same logins over TLS 1.3 (RFC 9427), which
	# wpa_supplicant 2.10 offers only when told to.
	case $2 in
	peap13) eapconf "$1" peap "$3"; sed -i 's/^phase1="peaplabel=0 /phase1="peaplabel=0 tls_disable_tlsv1_3=0 /' "$1"; return ;;
	tls13) eapconf "$1" tls "$3"; sed -i 's/^phase1="/phase1="tls_disable_tlsv1_3=0 /' "$1"; return ;;
	esac
	cat >"$1" <<C
network={
key_mgmt=IEEE8021X
$body
ca_cert="$d/ca.pem"
domain_match="radius.bench.example"
}
C
}

declare -A MS
# eapload label pid port conf [once] -> sets MS[label] (ms CPU per login),
# prints a line. P parallel eapol_test -r R; with "once", P parallel loops
# of R1 eapol_test processes of one login each (TLS 1.3: see below).
eapload() {
	local label=$1 pid=$2 port=$3 cf=$4 once=${5:-} R=$R c0 c1 n0 n1 t0 t1 ok cl=()
	rm -f "$WORK"/out.*
	idle "$pid"
	c0=$(cpu "$pid"); n0=$(cpuns "$pid"); t0=$(date +%s.%N)
	for i in $(seq "$P"); do
		local mac
		mac="02:00:00:00:00:$(printf %02x "$i")"
		if [ -n "$once" ]; then
			(for j in $(seq "$R1"); do
				eapol_test -c "$cf" -a 127.0.0.1 -p "$port" -s $SECRET -r 1 -t 30 -M "$mac" >"$WORK/out.$i.$j" 2>&1 || break
			done) &
		else
			eapol_test -c "$cf" -a 127.0.0.1 -p "$port" -s $SECRET -r "$R" -t 30 -M "$mac" >"$WORK/out.$i" 2>&1 &
		fi
		cl+=($!)
	done
	[ -n "$once" ] && R=1
	for j in "${cl[@]}"; do wait "$j" || true; done
	t1=$(date +%s.%N); c1=$(cpu "$pid"); n1=$(cpuns "$pid")
	# A process that ends with SUCCESS did all of its R logins (eapol_test
	# stops at the first failure); counting CTRL-EVENT-EAP-SUCCESS lines
	# would count TLS 1.3 logins twice.
	ok=0
	for f in "$WORK"/out.*; do
		[ "$(tail -n 1 "$f")" = SUCCESS ] && ok=$((ok + R))
	done
	local resumed=0
	[ "$R" -gt 1 ] && resumed=$(cat "$WORK"/out.* | grep -c "resumed=1" || true)
	local want=$((P * R))
	[ -n "$once" ] && want=$((P * R1))
	if [ "$ok" -lt "$want" ] || [ "$resumed" != 0 ]; then
		echo "WARNING $label: $ok of $want logins succeeded, $resumed resumed" >&2
		[ -n "${KEEP:-}" ] && cp "$WORK/out.1" "$WORK/fail.$label"
	fi
	# CPU in ns from schedstat when every thread alive at the start is
	# still there at the end (the ids seen at the start are all in the end
	# set); otherwise the tick count, which keeps exited threads' time.
	local ms=0 src=ns gone=0 t
	for t in $(echo "${n0#* }" | tr , ' '); do
		[[ ",${n1#* }" == *",$t,"* ]] || gone=1
	done
	if [ "$ok" -gt 0 ]; then
		if [ $gone = 0 ]; then
			ms=$(echo "(${n1%% *} - ${n0%% *}) / 1000000 / $ok" | bc -l)
		else
			src=ticks
			ms=$(echo "($c1 - $c0) * 1000 / $tck / $ok" | bc -l)
		fi
	fi
	MS[$label]="${MS[$label]:-} $ms"
	printf '%-24s %4d logins %7.1f logins/s %7.3f ms server CPU/login (%s)\n' "$label" "$ok" "$(echo "$ok / ($t1 - $t0)" | bc -l)" "$ms" "$src"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "== EAP full logins: $P parallel eapol_test -r $R, server CPU from /proc/<pid>/task/*/schedstat once the server is idle, $RUNS runs"
for k in $KEYS; do
	if [ "$k" != "$first" ]; then
		stop_dg; stop_fr
		start_dg "$k"; start_fr "$k"
	fi
	for m in peap ttls tls peap13 tls13; do
		eapconf "$WORK/$m-$k.conf" $m "$k"
	done
	for run in $(seq "$RUNS"); do
		for m in peap ttls tls; do
			eapload "deskgated-$m-$k" $DG_PID $DG_AUTH_PORT "$WORK/$m-$k.conf"
			eapload "freeradius-$m-$k" $FR_PID $FR_AUTH_PORT "$WORK/$m-$k.conf"
		done
		# TLS 1.3: FreeRADIUS 3.2.1 does EAP-TLS over TLS 1.3 (tls_max_version
		# above) but not PEAP, so PEAP over 1.3 is deskgated's alone.
		# One login per eapol_test process: with TLS 1.3 wpa_supplicant keeps
		# its session ticket, so -r would measure resumed logins.
		for m in peap13 tls13; do
			eapload "deskgated-$m-$k" $DG_PID $DG_AUTH_PORT "$WORK/$m-$k.conf" once
		done
		eapload "freeradius-tls13-$k" $FR_PID $FR_AUTH_PORT "$WORK/tls13-$k.conf" once
	done
done

echo
echo "== EAP summary (medians of $RUNS runs; ratio = FreeRADIUS CPU per login / deskgated's = logins per CPU-second, deskgated over FreeRADIUS)"
for k in $KEYS; do
	for m in peap ttls tls; do
		dg=$(echo "${MS[deskgated-$m-$k]}" | median)
		fr=$(echo "${MS[freeradius-$m-$k]}" | median)
		printf 'eap %-5s %-8s deskgated %6.3f ms CPU/login  freeradius %6.3f ms  ratio %5.2f×\n' "$m" "$k" "$dg" "$fr" "$(echo "if ($dg > 0) $fr / $dg else 0" | bc -l)"
	done
done
for k in $KEYS; do
	for m in peap tls; do
		d12=$(echo "${MS[deskgated-$m-$k]}" | median)
		d13=$(echo "${MS[deskgated-${m}13-$k]}" | median)
		printf 'eap %-5s %-8s deskgated TLS 1.2 %6.3f ms CPU/login  TLS 1.3 %6.3f ms  (1.3/1.2 %4.2f)\n' "$m" "$k" "$d12" "$d13" "$(echo "if ($d12 > 0) $d13 / $d12 else 0" | bc -l)"
	done
done
for k in $KEYS; do
	dg=$(echo "${MS[deskgated-tls13-$k]}" | median)
	fr=$(echo "${MS[freeradius-tls13-$k]}" | median)
	printf 'eap tls13 %-8s deskgated %6.3f ms CPU/login  freeradius %6.3f ms  ratio %5.2f×\n' "$k" "$dg" "$fr" "$(echo "if ($dg > 0) $fr / $dg else 0" | bc -l)"
done
