#!/bin/sh
# make demo: the OfficeRnD simulator with a seeded space and deskgated
# pointed at it, in the foreground until Ctrl-C. Everything lives in .demo/
# (delete it to start over). Nothing here touches the host's firewall or
# network links.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=${DEMO_DIR:-$ROOT/.demo}
BIN=${BIN:-$ROOT/bin}
SIM_ADDR=${SIM_ADDR:-127.0.0.1:8990}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:8417}
HOOK_ADDR=${HOOK_ADDR:-127.0.0.1:8418}
MEMBER_ADDR=${MEMBER_ADDR:-127.0.0.1:8443}
PORTAL_ADDR=${PORTAL_ADDR:-127.0.0.1:8080}
RADIUS_HOST=${RADIUS_HOST:-127.0.0.1}
RADIUS_SECRET=demo-radius-secret

mkdir -p "$DEMO/mailbox"
chmod 700 "$DEMO"
umask 077
printf '%s\n' deskgate-demo-secret >"$DEMO/officernd.secret"
printf '%s\n' "$RADIUS_SECRET" >"$DEMO/radius.secret"

cat >"$DEMO/deskgate.yaml" <<YAML
# Demo configuration written by scripts/demo.sh; see docs/configuration.md.
data_dir: $DEMO/data
log: {level: info}
admin:
  listen: $ADMIN_ADDR
  socket: $DEMO/deskgate.sock
  allowed_hosts: ["${ADMIN_ADDR%:*}"]   # the console's address in the browser
officernd:
  client_id: deskgate-demo
  client_secret: {file: $DEMO/officernd.secret}
  org_slug: demo-space
  api_base: http://$SIM_ADDR/api/v2
  token_url: http://$SIM_ADDR/oauth/token
sync:
  interval: 1m
  webhooks: true
  webhook_listen: $HOOK_ADDR
  webhook_public_url: http://$HOOK_ADDR/webhooks/officernd
users:
  username_format: email
  password_policy: generate
  welcome_email: true
  onboarding_url: http://$MEMBER_ADDR/onboard
members:                     # the member pages (/wifi setup, /onboard)
  listen: $MEMBER_ADDR
  insecure_http: true        # demo only: plain http, allowed on loopback only
plans:
  - {plan: Hot Desk, group: standard}
  - {plan: Dedicated Desk, group: premium}
  - {plan: Private Office, group: premium, static_ip: true}
  - {plan: Virtual Office, group: minimal, enabled: false}
  - {plan: Day Pass, group: daypass, duration: 24h}
groups:
  - {name: standard, bandwidth_down: 20mbit, bandwidth_up: 5mbit, max_devices: 3}
  - {name: premium, bandwidth_down: 100mbit, bandwidth_up: 20mbit, max_devices: 5}
  - {name: minimal, bandwidth_down: 5mbit, bandwidth_up: 1mbit, max_devices: 1}
  - {name: daypass, bandwidth_down: 10mbit, bandwidth_up: 2mbit, max_devices: 2}
locations:
  - {location: Downtown, network: downtown-secure, vlan: 100, subnet: 10.100.0.0/22, static_pool: 10.100.3.0/24}
  - {location: Uptown, network: uptown-secure, vlan: 200, subnet: 10.200.0.0/22, static_pool: 10.200.3.0/24}
roaming: {policy: single}
smtp:
  mailbox_dir: $DEMO/mailbox
  from: "Demo Space WiFi <wifi@demo-space.example>"
gateway:
  enabled: false             # the demo never touches the host's network: plan only
  trunk: eth1
  wan: eth0
  guest: {vlan: 300, address4: 10.50.0.1/22, bandwidth_down: 10mbit, bandwidth_up: 2mbit}
guests:
  guest_network: demo-guest
portal:
  enabled: true
  listen: $PORTAL_ADDR
  public_url: http://$PORTAL_ADDR
  default_location: Downtown
  branding:
    - {location: Downtown, name: "Demo Space Downtown", primary_color: "#0f766e"}
radius:
  auth_listen: ["$RADIUS_HOST:1812"]
  acct_listen: ["$RADIUS_HOST:1813"]
  clients:
    - name: demo-downtown-ap
      address: 127.0.0.1
      secret: {file: $DEMO/radius.secret}
      location: Downtown
      vendor: wispr
YAML

pids=""
cleanup() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo
	echo "demo stopped; state kept in .demo/ (rm -rf .demo to start over)"
}
trap cleanup INT TERM EXIT

"$BIN/officernd-sim" -listen "$SIM_ADDR" -state "$DEMO/sim-state.json" -log-level warn &
pids="$pids $!"
for _ in $(seq 50); do
	curl -fsS "http://$SIM_ADDR/_sim/seed" >/dev/null 2>&1 && break
	sleep 0.1
done

"$BIN/deskgated" -config "$DEMO/deskgate.yaml" 2>"$DEMO/deskgated.log" &
daemon=$!
pids="$pids $daemon"

# failed explains why deskgated is not running, from its own log, with the
# likely fix, and ends the demo.
failed() {
	echo "deskgated did not start:" >&2
	err=$(grep -E 'level=(ERROR|error)|^deskgated:' "$DEMO/deskgated.log" | tail -n 1)
	[ -n "$err" ] || err=$(tail -n 1 "$DEMO/deskgated.log")
	printf '  %s\n' "$err" >&2
	case "$err" in
	*"address already in use"*)
		echo "  Another program holds that address. A running FreeRADIUS takes 1812/1813:" >&2
		echo "  stop it (systemctl stop freeradius), or move the demo with RADIUS_HOST=127.0.0.2," >&2
		echo "  ADMIN_ADDR=, HOOK_ADDR=, PORTAL_ADDR= or SIM_ADDR= (ss -lntup shows who listens)." >&2 ;;
	*"permission denied"*)
		echo "  Run the demo as a user that may bind those ports and write .demo/." >&2 ;;
	esac
	echo "  Full log: $DEMO/deskgated.log" >&2
	exit 1
}

CLI="$BIN/deskgate -socket $DEMO/deskgate.sock"
for _ in $(seq 300); do
	kill -0 "$daemon" 2>/dev/null || failed
	$CLI -json status 2>/dev/null | grep -q '"ready": true' && break
	sleep 0.1
done
$CLI status || failed

# A demo operator for the web console (kept across demo runs).
CONSOLE_USER=demo
CONSOLE_PW=demo-console-pw
$CLI admin list 2>/dev/null | grep -q "^$CONSOLE_USER " ||
	printf '%s\n' "$CONSOLE_PW" | $CLI admin add "$CONSOLE_USER" --role admin >/dev/null
fp=$($CLI status | sed -n 's/.*SHA-256 \([0-9A-F:]*\).*/\1/p')

# A demo member's generated password, from their welcome email.
ada=ada.lovelace@example.com
eml=$(grep -l "To: .*$ada" "$DEMO"/mailbox/*.eml 2>/dev/null | head -n1 || true)
pw=$(sed -n 's/^ *Password: *//p' "$eml" 2>/dev/null | head -n1 | tr -d '\r' || true)
[ -n "$pw" ] || pw="<password from her welcome email in .demo/mailbox>"

# A PEAP-MSCHAPv2 client config for her, as a phone would use it.
cat >"$DEMO/eapol-ada.conf" <<CONF
network={
	key_mgmt=IEEE8021X
	eap=PEAP
	identity="$ada"
	anonymous_identity="anonymous"
	password="$pw"
	ca_cert="$DEMO/data/eap/ca.pem"
	domain_match="radius.deskgate.lan"
	phase1="peaplabel=0"
	phase2="auth=MSCHAPV2"
}
CONF
setup=$($CLI explain "$ada" | sed -n "s/^setup *//p")

# The day-pass visitor's guest code (valid 24 h from first login).
for _ in $(seq 50); do
	geml=$(grep -l "guest code" "$DEMO"/mailbox/*.eml 2>/dev/null | xargs -r grep -l "frances.allen@example.org" | head -n1 || true)
	[ -n "$geml" ] && break
	sleep 0.1
done
code=$(grep -o '[A-HJKMNP-Z2-9]\{3\}-[A-HJKMNP-Z2-9]\{3\}-[A-HJKMNP-Z2-9]\{3\}' "$geml" 2>/dev/null | head -n1 || true)
[ -n "$code" ] || code="<a code from a guest_code email in .demo/mailbox>"

cat <<EOT

deskgate demo is running (Ctrl-C stops it).

  OfficeRnD simulator  http://$SIM_ADDR/api/v2/organizations/demo-space/...
                       token: curl -s -d grant_type=client_credentials -d client_id=deskgate-demo \\
                                -d client_secret=deskgate-demo-secret http://$SIM_ADDR/oauth/token
  Welcome emails       $DEMO/mailbox/*.eml  (one per new WiFi account)
  Daemon log           $DEMO/deskgated.log
  Metrics              curl -s http://$ADMIN_ADDR/metrics | grep ^deskgate_   (no token needed)
  Admin API over TCP   $BIN/deskgate -addr $ADMIN_ADDR -token-file $DEMO/data/admin.token status
                       curl -s -H "Authorization: Bearer \$($CLI admin token)" http://$ADMIN_ADDR/v1/status
  Member pages         http://$MEMBER_ADDR/wifi?...  (setup links: deskgate explain <member>)
  Operator console     http://$ADMIN_ADDR/console/  (from this machine; https://$ADMIN_ADDR/console/ with
                       the self-signed certificate, SHA-256 $fp)
                       login: $CONSOLE_USER / $CONSOLE_PW  (role admin; deskgate admin add|passwd|remove|list)

Try the CLI:
  $CLI status
  $CLI members
  $CLI explain $ada
  $CLI explain edsger.dijkstra@example.org     # membership ended yesterday
  $CLI doctor
  $CLI net plan                                # what the gateway would program (plan only here)

RADIUS (PAP) as the Downtown access point would ask:
  radtest -x '$ada' '$pw' $RADIUS_HOST 0 $RADIUS_SECRET
  (Debian 12's radtest, 3.2.1+deb12u1, sends Message-Authenticator, which deskgate
   requires against BlastRADIUS; an older radtest that does not is dropped. With
   radclient, list it to have it sent:)
  printf 'User-Name=$ada\nUser-Password=$pw\nNAS-Identifier=demo-downtown-ap\nMessage-Authenticator=0x00\n' \\
    | radclient -x $RADIUS_HOST auth $RADIUS_SECRET

WPA-Enterprise (PEAP-MSCHAPv2 inside RADIUS, as her phone would log in):
  eapol_test -c $DEMO/eapol-ada.conf -a $RADIUS_HOST -s $RADIUS_SECRET | tail -1
  her device setup page (profile, CA, EAP-TLS certificate; valid 7 days): $setup
  her EAP-TLS certificates: $CLI certs $ada   (revoke: $CLI certs revoke <serial>)

Drive a change through the simulator, then ask again:
  curl -s -X POST http://$SIM_ADDR/_sim/faults -d '{"down":true}'   # OfficeRnD down: decisions still served
  curl -s -X POST http://$SIM_ADDR/_sim/faults -d '{"down":false}'

Captive portal (as a guest on the guest network would see it):
  open http://$PORTAL_ADDR/ and enter the day-pass code $code
  (or sign in as a member with $ada and her password);
  probes: curl -si http://$PORTAL_ADDR/generate_204 | head -3
  RFC 8908 API: curl -s http://$PORTAL_ADDR/captive-portal/api
EOT
wait
