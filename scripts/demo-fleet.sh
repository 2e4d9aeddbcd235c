#!/bin/sh
# make demo-fleet: three boxes of one space on loopback (box-a and box-b
# serve Downtown, box-c Uptown) and the OfficeRnD simulator, joined into a
# fleet with `deskgate fleet init|invite|join`, in the foreground until
# Ctrl-C. State lives in .demo-fleet/ (deleted at start). Nothing here
# touches the host's firewall or network links. See docs/fleet.md.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/.demo-fleet
BIN=$ROOT/bin
SIM_ADDR=${SIM_ADDR:-127.0.0.1:8990}
RADIUS_SECRET=demo-radius-secret

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 700 "$DEMO"
umask 077
printf '%s\n' deskgate-demo-secret >"$DEMO/officernd.secret"
printf '%s\n' "$RADIUS_SECRET" >"$DEMO/radius.secret"

# box <name> <n> <location>: writes .demo-fleet/<name>/deskgate.yaml; box
# n listens on 127.0.0.<n+1> (admin 8417, webhooks 8418, member pages
# 8419, fleet 8443, RADIUS 1812/1813), so the boxes differ only in address.
box() {
	name=$1 ip=127.0.0.$(($2 + 1)) loc=$3
	d=$DEMO/$name
	mkdir -p "$d/mailbox"
	hooks="webhooks: false"
	[ "$name" = box-a ] && hooks="webhooks: true
  webhook_public_url: http://$ip:8418/webhooks/officernd"
	cat >"$d/deskgate.yaml" <<YAML
# Demo configuration written by scripts/demo-fleet.sh; see docs/configuration.md.
data_dir: $d/data
log: {level: info}
admin: {listen: "$ip:8417", socket: $d/deskgate.sock}
officernd:
  client_id: deskgate-demo
  client_secret: {file: $DEMO/officernd.secret}
  org_slug: demo-space
  api_base: http://$SIM_ADDR/api/v2
  token_url: http://$SIM_ADDR/oauth/token
sync:
  interval: 1h               # box-a relays OfficeRnD's webhooks to the others
  webhook_listen: "$ip:8418"
  $hooks
users: {username_format: email, password_policy: generate, welcome_email: true, onboarding_url: "http://$ip:8419/onboard"}
members: {listen: "$ip:8419", insecure_http: true}   # demo only: plain http on loopback
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
roaming: {policy: all}
smtp: {mailbox_dir: $d/mailbox, from: "Demo Space WiFi <wifi@demo-space.example>"}
radius:
  auth_listen: ["$ip:1812"]
  acct_listen: ["$ip:1813"]
  clients:
    - {name: ap-$name, address: 127.0.0.1, secret: {file: $DEMO/radius.secret}, location: $loc, vendor: wispr}
fleet:
  listen: "$ip:8443"
  locations: [$loc]
YAML
}
box box-a 1 Downtown
box box-b 2 Downtown
box box-c 3 Uptown

pids=""
cleanup() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo
	echo "demo-fleet stopped; state kept in .demo-fleet/"
}
trap cleanup INT TERM EXIT

"$BIN/officernd-sim" -listen "$SIM_ADDR" -state "$DEMO/sim-state.json" -log-level warn &
pids="$pids $!"
for _ in $(seq 50); do
	curl -fsS "http://$SIM_ADDR/_sim/seed" >/dev/null 2>&1 && break
	sleep 0.1
done

# start <name>: runs the box's daemon and waits until it is ready.
start() {
	d=$DEMO/$1
	# DESKGATE_DEMO_SWITCHES=1 offers the partition switch (fleet partition/heal).
	DESKGATE_DEMO_SWITCHES=1 "$BIN/deskgated" -config "$d/deskgate.yaml" 2>>"$d/deskgated.log" &
	p=$!
	eval "pid_$(echo "$1" | tr - _)=$p"
	pids="$pids $p"
	for _ in $(seq 300); do
		kill -0 "$p" 2>/dev/null || break
		"$BIN/deskgate" -socket "$d/deskgate.sock" -json status 2>/dev/null | grep -q '"ready": true' && return 0
		sleep 0.1
	done
	echo "$1 did not start; see $d/deskgated.log" >&2
	tail -n 3 "$d/deskgated.log" >&2
	exit 1
}
cli() { name=$1; shift; "$BIN/deskgate" -socket "$DEMO/$name/deskgate.sock" "$@"; }

for b in box-a box-b box-c; do start $b; done
cli box-a fleet init --id box-a
for b in box-b box-c; do
	tok=$(cli box-a -json fleet invite --ttl 10m | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
	cli $b fleet join "$tok" --id $b
done
# Restart so RADIUS presents the fleet-signed certificate.
for b in box-a box-b box-c; do
	eval "kill \$pid_$(echo $b | tr - _)"
	sleep 0.5
	start $b
done
sleep 2
cli box-c fleet status

# A new member in OfficeRnD, created through the simulator's API.
tok=$(curl -fsS -d grant_type=client_credentials -d client_id=deskgate-demo -d client_secret=deskgate-demo-secret \
	"http://$SIM_ADDR/oauth/token" | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
seed=$(curl -fsS "http://$SIM_ADDR/_sim/seed")
id() { printf '%s' "$seed" | sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p"; }
api="http://$SIM_ADDR/api/v2/organizations/demo-space"
mid=$(curl -fsS -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d "{\"name\":\"Grace Fleet\",\"email\":\"grace.fleet@example.net\",\"location\":\"$(id location:Downtown)\"}" \
	"$api/members" | sed -n 's/.*"_id": *"\([^"]*\)".*/\1/p')
curl -fsS -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d "{\"name\":\"Hot Desk\",\"isPersonal\":true,\"member\":\"$mid\",\"plan\":\"$(id "plan:Hot Desk")\",\"location\":\"$(id location:Downtown)\",\"startDate\":\"$(date -u +%Y-%m-%d)T00:00:00.000Z\"}" \
	"$api/memberships"
sleep 2
pw=$(sed -n 's/^ *Password: *//p' "$DEMO"/box-*/mailbox/*.eml 2>/dev/null | head -n1 | tr -d '\r')

cat <<EOT

deskgate demo-fleet is running (Ctrl-C stops it): three boxes, one space.

  box-a  127.0.0.2  Downtown  (receives OfficeRnD's webhooks, holds the fleet CA)
  box-b  127.0.0.3  Downtown
  box-c  127.0.0.4  Uptown
  logs   $DEMO/box-*/deskgated.log      mailboxes  $DEMO/box-*/mailbox/

A member was just created in OfficeRnD (grace.fleet@example.net, Downtown):
  grep -l grace.fleet $DEMO/box-*/mailbox/*.eml     # one welcome email, from box-a
  password: ${pw:-<see the email>}

Her password works at every box (PAP as the access point asks):
  for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
    printf 'User-Name=grace.fleet@example.net\nUser-Password=$pw\nMessage-Authenticator=0x00\n' \\
      | radclient -x \$ip auth $RADIUS_SECRET | grep -o 'Received Access-[A-Za-z]*'
  done

PEAP with one supplicant configuration for all three (fleet CA + shared name):
  ca_cert="$DEMO/box-a/data/fleet/ca.crt"  domain_match="radius.deskgate.lan"

The fleet:
  $BIN/deskgate -socket $DEMO/box-b/deskgate.sock fleet status
  $BIN/deskgate -socket $DEMO/box-a/deskgate.sock fleet invite
  $BIN/deskgate -socket $DEMO/box-a/deskgate.sock fleet remove box-c   # box-c refused everywhere

A partition, and its healing (the demo switch: box-c refuses and stops dialing its peers):
  $BIN/deskgate -socket $DEMO/box-c/deskgate.sock fleet partition box-a box-b
  $BIN/deskgate -socket $DEMO/box-a/deskgate.sock fleet status    # box-c: down
  # change something meanwhile: a new member in OfficeRnD, a password on a member page
  $BIN/deskgate -socket $DEMO/box-c/deskgate.sock fleet heal
  $BIN/deskgate -socket $DEMO/box-c/deskgate.sock fleet dump | head -1   # same digest at every box
EOT
wait
