#!/usr/bin/env bash
# bench.sh — EAP login throughput and server CPU per authentication: deskgate's EAP server (benchsrv)
# against FreeRADIUS 3.2 with its default EAP configuration, in the same run, on the same cores.
# Parallel `eapol_test -r N` loops; CPU is read from /proc/<pid>/stat of each server.
# Usage: appliance/eap/bench.sh   (env: P=parallel clients, R=repeats per client, RRES=repeats for resumed)
set -euo pipefail
P=${P:-8}
R=${R:-24}
RRES=${RRES:-40}
DG_PORT=${DG_PORT:-28812}
FR_PORT=${FR_PORT:-28912}
SECRET=testing123
root=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/eapbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
command -v eapol_test >/dev/null || { echo "eapol_test missing (apt-get install eapoltest)"; exit 1; }
command -v freeradius >/dev/null || { echo "freeradius missing"; exit 1; }
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # utime+stime in ticks

# --- deskgate ---
(cd "$root" && go build -o "$T/benchsrv" ./appliance/eap/internal/benchsrv)
mkdir -p "$T/dg"
"$T/benchsrv" ${CPUPROFILE:+-cpuprofile "$CPUPROFILE"} -addr 127.0.0.1:$DG_PORT -dir "$T/dg" -users "bench:correct horse" >"$T/dg.log" 2>&1 &
dgpid=$!; pids+=($dgpid)

# --- FreeRADIUS: private copy of the stock config, default EAP module, one user ---
start_fr() { # $1 = cache yes|no
  rm -rf "$T/raddb"; cp -a /etc/freeradius/3.0 "$T/raddb"
  python3 - "$T" "$1" "$FR_PORT" <<'PY'
import re, sys
t, cache = sys.argv[1], sys.argv[2]
rc = open(f"{t}/raddb/radiusd.conf").read()
rc = rc.replace("raddbdir = /etc/freeradius/3.0", f"raddbdir = {t}/raddb")
rc = rc.replace("logdir = /var/log/freeradius", f"logdir = {t}/frlog")
rc = rc.replace("run_dir = ${localstatedir}/run/${name}", f"run_dir = {t}/frrun")
rc = re.sub(r"\n\s*user = freerad", "\n", rc); rc = re.sub(r"\n\s*group = freerad", "\n", rc)
open(f"{t}/raddb/radiusd.conf", "w").write(rc)
eap = open(f"{t}/raddb/mods-available/eap").read()
if cache == "yes":
    eap = eap.replace("\t\t\tenable = no", "\t\t\tenable = yes", 1)
open(f"{t}/raddb/mods-available/eap", "w").write(eap)
u = f"{t}/raddb/mods-config/files/authorize"
open(u, "w").write('bench Cleartext-Password := "correct horse"\n' + open(u).read())
port = int(sys.argv[3])
d = open(f"{t}/raddb/sites-available/default").read()
for i in range(4):
    d = d.replace("\tport = 0", f"\tport = {port + i}", 1)
d = d.replace("ipaddr = *", "ipaddr = 127.0.0.1").replace("ipv6addr = ::", "ipv6addr = ::1")
open(f"{t}/raddb/sites-available/default", "w").write(d)
it = open(f"{t}/raddb/sites-available/inner-tunnel").read()
open(f"{t}/raddb/sites-available/inner-tunnel", "w").write(it.replace("port = 18120", f"port = {port + 4}"))
PY
  rm -f "$T/raddb/mods-enabled/eap"; ln -s ../mods-available/eap "$T/raddb/mods-enabled/eap"
  mkdir -p "$T/frlog" "$T/frrun"
  freeradius -f -l stdout -d "$T/raddb" >"$T/fr.log" 2>&1 &
  frpid=$!; pids+=($frpid)
  for _ in $(seq 50); do grep -q "Ready to process" "$T/fr.log" && return 0; sleep 0.1; done
  echo "FreeRADIUS did not start:"; tail -20 "$T/fr.log"; exit 1
}
stop_fr() { kill "$frpid"; wait "$frpid" 2>/dev/null || true; }

for _ in $(seq 50); do grep -q ready "$T/dg.log" && break; sleep 0.1; done

conf() { # $1 file $2 eap $3 phase2 $4 tickets(0/1) $5 server(dg|fr)
  local ca=""
  [ "$5" = dg ] && ca="ca_cert=\"$T/dg/trust.pem\"
domain_match=\"radius.bench.example\""
  cat >"$1" <<C
network={
key_mgmt=IEEE8021X
eap=$2
identity="bench"
anonymous_identity="anonymous"
password="correct horse"
$ca
phase1="peaplabel=0 tls_disable_session_ticket=$4"
phase2="auth=$3"
}
C
}

# run_load server port conf repeats -> prints "auths seconds cputicks"
run_load() {
  local pid=$1 port=$2 cf=$3 rep=$4
  local c0 c1 t0 t1 ok
  local cl=()
  c0=$(cpu "$pid"); t0=$(date +%s.%N)
  for i in $(seq "$P"); do
    eapol_test -c "$cf" -a 127.0.0.1 -p "$port" -s $SECRET -r "$rep" -t 30 -M "02:00:00:00:$(printf %02x $((i/256))):$(printf %02x $((i%256)))" >"$T/out.$i" 2>&1 &
    cl+=($!)
  done
  for j in "${cl[@]}"; do wait "$j" || true; done
  t1=$(date +%s.%N); c1=$(cpu "$pid")
  ok=$(cat "$T"/out.* | grep -c "CTRL-EVENT-EAP-SUCCESS" || true)
  RESUMED=$(cat "$T"/out.* | grep -c "Handshake finished - resumed=1" || true)
  local bad; bad=$(cat "$T"/out.* | grep -c "mismatch: [1-9]" || true)
  [ "$bad" = 0 ] || echo "WARNING: MPPE key mismatch" >&2
  [ -n "${KEEP:-}" ] && cat "$T"/out.* > "$T/last.out"; rm -f "$T"/out.*
  echo "$ok $(echo "$t1 - $t0" | bc -l) $((c1 - c0)) $RESUMED"
}

declare -A RES
measure() { # name server pid port eap phase2 tickets repeats
  local name=$1 srv=$2 pid=$3 port=$4
  conf "$T/$name.conf" "$5" "$6" "$7" "$srv"
  read -r n secs ticks resumed < <(run_load "$pid" "$port" "$T/$name.conf" "$8")
  local rate ms
  rate=$(echo "$n / $secs" | bc -l); ms=$(echo "if ($n > 0) $ticks * 1000 / $tck / $n else 0" | bc -l)
  RES[$name.resumed]=$resumed; RES[$name.n]=$n; RES[$name.rate]=$rate; RES[$name.ms]=$ms; RES[$name.ticks]=$ticks
  printf "%-28s %6d auths (%4d resumed) %8.1f auths/s %8.3f ms CPU/auth\n" "$name" "$n" "$resumed" "$rate" "$ms"
}

echo "P=$P parallel eapol_test clients; full runs -r $R, resumed runs -r $RRES; $(nproc) cores"
measure dg-peap-full dg $dgpid $DG_PORT PEAP MSCHAPV2 1 "$R"
measure dg-ttls-full dg $dgpid $DG_PORT TTLS PAP 1 "$R"
measure dg-peap-resume dg $dgpid $DG_PORT PEAP MSCHAPV2 0 "$RRES"
measure dg-ttls-resume dg $dgpid $DG_PORT TTLS PAP 0 "$RRES"
start_fr no
measure fr-peap-full fr $frpid $FR_PORT PEAP MSCHAPV2 1 "$R"
measure fr-ttls-full fr $frpid $FR_PORT TTLS PAP 1 "$R"
stop_fr
start_fr yes
measure fr-peap-resume fr $frpid $FR_PORT PEAP MSCHAPV2 0 "$RRES"
measure fr-ttls-resume fr $frpid $FR_PORT TTLS PAP 0 "$RRES"
stop_fr

# Resumed-only CPU: subtract the one full login per client from the resumed runs.
resonly() { # srv method
  local full=${RES[$1-$2-full.ms]} n=${RES[$1-$2-resume.n]} ticks=${RES[$1-$2-resume.ticks]}
  echo "($ticks * 1000 / $tck - $P * $full) / ($n - $P)" | bc -l
}
echo
echo "summary (FreeRADIUS / deskgate: >1 means deskgate is better)"
for m in peap ttls; do
  dr=$(resonly dg $m); fr=$(resonly fr $m)
  printf "%-5s full:    deskgate %7.3f ms CPU/auth, FreeRADIUS %7.3f ms  -> CPU ratio %5.2f; rate %6.1f vs %6.1f auths/s -> %5.2f\n" \
    $m "${RES[dg-$m-full.ms]}" "${RES[fr-$m-full.ms]}" "$(echo "${RES[fr-$m-full.ms]} / ${RES[dg-$m-full.ms]}" | bc -l)" \
    "${RES[dg-$m-full.rate]}" "${RES[fr-$m-full.rate]}" "$(echo "${RES[dg-$m-full.rate]} / ${RES[fr-$m-full.rate]}" | bc -l)"
  printf "%-5s resumed: deskgate %7.3f ms CPU/auth, FreeRADIUS %7.3f ms  -> CPU ratio %5.2f; rate %6.1f vs %6.1f auths/s -> %5.2f\n" \
    $m "$dr" "$fr" "$(echo "$fr / $dr" | bc -l)" \
    "${RES[dg-$m-resume.rate]}" "${RES[fr-$m-resume.rate]}" "$(echo "${RES[dg-$m-resume.rate]} / ${RES[fr-$m-resume.rate]}" | bc -l)"
done
for s in dg fr; do for m in peap ttls; do
  [ "${RES[$s-$m-resume.resumed]}" -gt 0 ] || echo "note: $s resumed no $m session (eapol_test offered them); its 'resumed' figures are full handshakes"
done; done
