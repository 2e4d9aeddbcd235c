package fleettest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius/rfc2866"

	"github.com/deskgate/deskgate/appliance/admin"
	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/peer"
)

var (
	seedFlag = flag.Uint64("seed", 0, "seed of TestFleetJepsen (default $DESKGATE_JEPSEN_SEED, else random)")
	opsFlag  = flag.Int("ops", 0, "operations of TestFleetJepsen (default $DESKGATE_JEPSEN_OPS, else 1000)")
)

// jMember is what the test knows of one member it created.
type jMember struct {
	id, email, membership string
	loc                   int  // index into locations
	seq                   int  // creation order, for "which boxes synced it"
	ended                 bool // membership ended in OfficeRnD
	link                  string
	pw                    string    // acknowledged member-chosen password
	pwMaybe               string    // sent, not acknowledged (box killed)
	dayPass               *jDayPass // a drop-in member with one Day Pass (no membership)
}

// jDayPass is a member's Day Pass and the first WiFi logins (accounting
// Starts) the test sent for it.
type jDayPass struct {
	id     string
	starts []jLogin
}

// jLogin is one accounting Start: sent and answered (or given up) between
// two readings of the test's clock, which is the boxes' clock too.
type jLogin struct {
	box        int
	sent, done time.Time
	acked      bool
}

// problem says how the fleet's first use of day pass p (its daypass
// register in d) disagrees with the logins sent: an acknowledged login
// must start it, at a login the test sent (its Start's time lies within
// the request's round trip), no later than the earliest acknowledged one.
// It returns "" and the first use when they agree.
func (p *jDayPass) problem(d peer.Dump) (string, time.Time) {
	r, ok := register(d, peer.KindDayPass, "pass/"+p.id)
	var earliest *jLogin
	for k, l := range p.starts {
		if l.acked && (earliest == nil || l.done.Before(earliest.done)) {
			earliest = &p.starts[k]
		}
	}
	switch {
	case !ok && earliest != nil:
		return fmt.Sprintf("acknowledged login at box %d, never started", earliest.box), time.Time{}
	case !ok:
		return "", time.Time{}
	case len(p.starts) == 0:
		return "started although nobody logged in", time.Time{}
	}
	var v peer.DayPassValue
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return fmt.Sprintf("daypass register %s: %v", r.Key, err), time.Time{}
	}
	sent := slices.ContainsFunc(p.starts, func(l jLogin) bool { return !v.At.Before(l.sent) && !v.At.After(l.done) })
	if !sent || (earliest != nil && v.At.After(earliest.done)) {
		return fmt.Sprintf("first use %s at %s, not the earliest acknowledged login (logins %v)", v.At.Format(time.RFC3339Nano), v.Box, p.starts), time.Time{}
	}
	return "", v.At
}

func (l jLogin) String() string {
	return fmt.Sprintf("box %d %s..%s acked %t", l.box, l.sent.UTC().Format("15:04:05.000000"), l.done.UTC().Format("15:04:05.000000"), l.acked)
}

// jCert is one EAP-TLS certificate the test had issued.
type jCert struct {
	serial      string
	member      *jMember
	revoked     bool // a revocation was acknowledged
	revokeTried bool // a revocation was sent
}

// jSession is one accounting session the test started.
type jSession struct {
	box          int
	sid, mac     string
	member       *jMember
	state        string // live | stopped | unknown (a request was not acknowledged)
	stopUnacked  bool
	startAcked   bool
	startUnacked bool
}

// TestFleetJepsen (issue 11 acceptance, randomized test): three deskgated
// processes in network namespaces and at least 1,000 random operations at
// random boxes: members created and ended in OfficeRnD (and polled at a
// random box), member-chosen passwords set on the owner's member page,
// sessions started and stopped (RADIUS accounting, layeh.com/radius from
// inside the box's namespace: radclient costs ~0.2 s a request), EAP-TLS
// certificates issued on a random box's member page and revoked at a
// random box, day passes used (a drop-in member's first WiFi login, an
// accounting Start at a random box, possibly at both sides of a
// partition), random partitions
// cut with iptables, heals, and kill -9 of random boxes restarted on the
// same data directory. Afterwards, with the network healed and every box
// running and synced: every box holds the same replicated state (fleet
// dump), every acknowledged operation is in it, every member has one
// password everywhere and exactly one welcome email, every day pass used
// by an acknowledged login starts at the earliest acknowledged login and
// ends at the same moment at every box.
//
// It prints its seed; -seed N (or DESKGATE_JEPSEN_SEED=N) replays the same
// operation sequence (timing still varies), -ops N changes the count.
func TestFleetJepsen(t *testing.T) {
	needTools(t, "radclient")
	seed := *seedFlag
	if seed == 0 {
		if v := os.Getenv("DESKGATE_JEPSEN_SEED"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("DESKGATE_JEPSEN_SEED=%q: %v", v, err)
			}
			seed = n
		} else {
			seed = rand.Uint64() >> 12
		}
	}
	nops := *opsFlag
	if nops == 0 {
		nops = 1000
		if v := os.Getenv("DESKGATE_JEPSEN_OPS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("DESKGATE_JEPSEN_OPS=%q: want a positive count", v)
			}
			nops = n
		}
	}
	t.Logf("seed %d (replay: go test ./internal/fleettest -run TestFleetJepsen -seed %d, or DESKGATE_JEPSEN_SEED=%d)", seed, seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with DESKGATE_JEPSEN_SEED=%d", seed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	f := startFleet(t, fleetOpts{netns: true, policy: "member"})
	locations := []string{"Downtown", "Uptown"}
	owner := func(m *jMember) *box { // docs/fleet.md: lowest box id serving the home location
		if m.loc == 0 {
			return f.boxes[0]
		}
		return f.boxes[2]
	}
	var (
		members   []*jMember
		sessions  []*jSession
		certs     []*jCert
		dayLogins []*jMember                  // one per day-pass login sent
		synced    = make([]int, len(f.boxes)) // per box: members[:synced[i]] were created before its last good poll
		sides     []int
		counts    = map[string]int{}
		spent     = map[string]time.Duration{}
		began     = time.Now()
	)
	running := func() []int {
		var out []int
		for i, b := range f.boxes {
			if b.running() {
				out = append(out, i)
			}
		}
		return out
	}
	pick := func(xs []int) int { return xs[rng.IntN(len(xs))] }
	syncAt := func(i int) {
		n := len(members)
		if err := f.boxes[i].sync(); err == nil {
			synced[i] = n
		}
	}
	partitions := [][]int{{0, 0, 1}, {0, 1, 1}, {0, 1, 0}, {0, 1, 2}}

	type op struct {
		name   string
		weight int
		run    func() bool // false: not applicable now
	}
	ops := []op{
		{"create member", 10, func() bool {
			m := &jMember{loc: rng.IntN(2), seq: len(members)}
			m.email = fmt.Sprintf("j%04d@jepsen.example", len(members))
			if rng.IntN(5) == 0 { // a drop-in with a Day Pass
				m.dayPass = &jDayPass{}
				m.id, m.dayPass.id = f.createDayPassMember(fmt.Sprintf("Jepsen %04d", len(members)), m.email, locations[m.loc])
			} else {
				m.id, m.membership = f.createMember(fmt.Sprintf("Jepsen %04d", len(members)), m.email, locations[m.loc])
			}
			members = append(members, m)
			if r := running(); len(r) > 0 {
				syncAt(pick(r))
			}
			return true
		}},
		{"end membership", 3, func() bool {
			var cands []*jMember
			for _, m := range members {
				if !m.ended && m.dayPass == nil {
					cands = append(cands, m)
				}
			}
			if len(cands) == 0 {
				return false
			}
			m := cands[rng.IntN(len(cands))]
			f.endMembership(m.membership)
			m.ended = true
			if r := running(); len(r) > 0 {
				syncAt(pick(r))
			}
			return true
		}},
		{"poll", 6, func() bool {
			r := running()
			if len(r) == 0 {
				return false
			}
			syncAt(pick(r))
			return true
		}},
		{"set password", 10, func() bool {
			var cands []*jMember
			for _, m := range members {
				if m.pw == "" && m.pwMaybe == "" && !m.ended && owner(m).running() {
					cands = append(cands, m)
				}
			}
			if len(cands) == 0 {
				return false
			}
			m := cands[rng.IntN(len(cands))]
			if m.link == "" {
				mails := owner(m).welcomeMails(m.email)
				if len(mails) == 0 {
					return false // the owner has not polled it yet
				}
				m.link = onboardLinkRe.FindString(mails[0])
			}
			pw := fmt.Sprintf("Jepsen-%d-%s", rng.IntN(1e9), m.id[len(m.id)-4:])
			if err := f.onboard(m.link, pw); err != nil {
				m.pwMaybe = pw
				return true
			}
			m.pw = pw
			return true
		}},
		{"session start", 14, func() bool {
			r := running()
			if len(r) == 0 {
				return false
			}
			i := pick(r)
			var cands []*jMember
			for _, m := range members[:synced[i]] {
				if !m.ended && m.dayPass == nil {
					cands = append(cands, m)
				}
			}
			if len(cands) == 0 {
				return false
			}
			s := &jSession{box: i, member: cands[rng.IntN(len(cands))], sid: fmt.Sprintf("j-%d", len(sessions)),
				mac: fmt.Sprintf("02-00-00-%02x-%02x-%02x", i, len(sessions)>>8, len(sessions)&0xff)}
			sessions = append(sessions, s)
			if f.boxes[i].accountingGo(s.member.email, s.sid, s.mac, rfc2866.AcctStatusType_Value_Start) {
				s.state, s.startAcked = "live", true
			} else {
				s.state, s.startUnacked = "unknown", true
			}
			return true
		}},
		{"session stop", 9, func() bool {
			var cands []*jSession
			for _, s := range sessions {
				if s.state == "live" && f.boxes[s.box].running() {
					cands = append(cands, s)
				}
			}
			if len(cands) == 0 {
				return false
			}
			s := cands[rng.IntN(len(cands))]
			if f.boxes[s.box].accountingGo(s.member.email, s.sid, s.mac, rfc2866.AcctStatusType_Value_Stop) {
				s.state = "stopped"
			} else {
				s.state, s.stopUnacked = "unknown", true
			}
			return true
		}},
		// A day pass starts with its holder's first WiFi login: the box
		// that saw it records it (a 15 s ticker) in a minimum register.
		// These sessions are never stopped (a login shorter than a tick
		// does not start the pass).
		{"day pass used", 5, func() bool {
			r := running()
			if len(r) == 0 {
				return false
			}
			i := pick(r)
			var cands []*jMember
			for _, m := range members[:synced[i]] {
				if m.dayPass != nil && len(m.dayPass.starts) < 3 {
					cands = append(cands, m)
				}
			}
			if len(cands) == 0 {
				return false
			}
			m := cands[rng.IntN(len(cands))]
			n := len(dayLogins)
			dayLogins = append(dayLogins, m)
			l := jLogin{box: i, sent: time.Now().Round(0)}
			l.acked = f.boxes[i].accountingGo(m.email, fmt.Sprintf("dp-%d", n),
				fmt.Sprintf("02-00-01-%02x-%02x-%02x", i, n>>8, n&0xff), rfc2866.AcctStatusType_Value_Start)
			l.done = time.Now().Round(0)
			m.dayPass.starts = append(m.dayPass.starts, l)
			return true
		}},
		{"issue certificate", 4, func() bool {
			r := running()
			if len(r) == 0 {
				return false
			}
			i := pick(r)
			var cands []*jMember
			for _, m := range members[:synced[i]] {
				if !m.ended {
					cands = append(cands, m)
				}
			}
			if len(cands) == 0 {
				return false
			}
			m := cands[rng.IntN(len(cands))]
			if _, serial, err := f.boxes[i].clientCert(m.email); err == nil {
				certs = append(certs, &jCert{serial: serial, member: m})
			}
			return true
		}},
		{"revoke certificate", 3, func() bool {
			var cands []*jCert
			for _, c := range certs {
				if !c.revoked {
					cands = append(cands, c)
				}
			}
			r := running()
			if len(cands) == 0 || len(r) == 0 {
				return false
			}
			c := cands[rng.IntN(len(cands))]
			c.revokeTried = true
			c.revoked = f.boxes[pick(r)].revokeCert(c.serial)
			return true
		}},
		{"partition", 3, func() bool {
			sides = partitions[rng.IntN(len(partitions))]
			f.lab.cut(sides)
			return true
		}},
		{"heal", 3, func() bool {
			if sides == nil {
				return false
			}
			sides = nil
			f.lab.cut(nil)
			return true
		}},
		{"kill -9", 2, func() bool {
			r := running()
			if len(r) < len(f.boxes) { // one box down at a time
				return false
			}
			f.boxes[pick(r)].stop(syscall.SIGKILL)
			return true
		}},
		{"restart", 3, func() bool {
			for _, b := range f.boxes {
				if !b.running() {
					b.start()
					b.waitReady(30 * time.Second)
					return true
				}
			}
			return false
		}},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for done := 0; done < nops; {
		w := rng.IntN(total)
		for _, o := range ops {
			if w -= o.weight; w < 0 {
				st := time.Now()
				if o.run() {
					done++
					counts[o.name]++
					spent[o.name] += time.Since(st)
				}
				break
			}
		}
	}
	opsTook := time.Since(began)
	t.Logf("%d operations in %s: %v", nops, opsTook.Round(time.Millisecond), counts)
	t.Logf("time per kind: %v", spent)

	// Heal, restart, let every box poll, drain the outboxes.
	healAt := time.Now()
	f.lab.cut(nil)
	for _, b := range f.boxes {
		if !b.running() {
			b.start()
			b.waitReady(30 * time.Second)
		}
	}
	for _, b := range f.boxes {
		if err := b.sync(); err != nil {
			t.Fatalf("final poll at %s: %v", b.id, err)
		}
	}
	waitFor(t, 20*time.Second, "every outbox empty", func() bool {
		for _, b := range f.boxes {
			if st, err := b.status(); err != nil || st.Outbox != 0 {
				return false
			}
		}
		return true
	})
	// A box starts a day pass at its next 15 s tick after the login (or
	// after its restart): wait for every acknowledged one at every box.
	var usedPasses []*jDayPass
	for _, m := range members {
		if m.dayPass != nil && slices.ContainsFunc(m.dayPass.starts, func(l jLogin) bool { return l.acked }) {
			usedPasses = append(usedPasses, m.dayPass)
		}
	}
	// Not waitFor: a timeout is reported with the details below.
	dpStart := time.Now()
dpWait:
	for time.Since(dpStart) < 20*time.Second {
		for _, b := range f.boxes {
			d, err := b.dump()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue dpWait
			}
			for _, p := range usedPasses {
				if msg, _ := p.problem(d); msg != "" {
					time.Sleep(50 * time.Millisecond)
					continue dpWait
				}
			}
		}
		break
	}
	t.Logf("%d day passes used: started at every box %s after the outboxes drained", len(usedPasses), time.Since(dpStart).Round(time.Millisecond))
	d, took := f.converged(30*time.Second, "after the run")
	t.Logf("converged %s after the final heal (%s after the last poll): digest %.16s…, %d registers, %d accounts, vv %v",
		time.Since(healAt).Round(time.Millisecond), took.Round(time.Millisecond), d.Digest, len(d.Registers), len(d.Accounts), d.VV)

	// Every acknowledged operation is present.
	var lost []string
	for _, m := range members {
		acct, ok := account(d, m.id)
		if ok == m.ended {
			lost = append(lost, fmt.Sprintf("member %s (%s): enabled account %t, ended %t", m.id, m.email, ok, m.ended))
		}
		r, hasReg := register(d, peer.KindPassword, m.id)
		var v struct{ Password string }
		if hasReg {
			_ = json.Unmarshal(r.Value, &v)
		}
		if !ok {
			acct.Password = v.Password // no enabled account to hold it: the register must
		}
		switch {
		case m.pw != "":
			want := peer.PasswordFingerprint(creds.NTHash(m.pw))
			if v.Password != want || acct.Password != want {
				lost = append(lost, fmt.Sprintf("member %s: acknowledged password lost (register %q, account %q, want %q)", m.email, v.Password, acct.Password, want))
			}
		case m.pwMaybe != "":
			if want := peer.PasswordFingerprint(creds.NTHash(m.pwMaybe)); acct.Password != "" && acct.Password != want {
				lost = append(lost, fmt.Sprintf("member %s: a password nobody set (%q)", m.email, acct.Password))
			}
		default:
			if acct.Password != "" || hasReg {
				lost = append(lost, fmt.Sprintf("member %s: a password although none was set", m.email))
			}
		}
		// A member whose membership ended before the owner box polled her
		// never had an account there, so got no email (nor needs one).
		if n := len(f.welcomes(m.email)); n > 1 || (n == 0 && !m.ended) {
			lost = append(lost, fmt.Sprintf("member %s (ended %t): %d welcome emails, want 1", m.email, m.ended, n))
		}
	}
	for _, s := range sessions {
		key := f.boxes[s.box].id + "/ap/" + s.sid
		live, ok := sessionLive(t, d, key)
		switch {
		case s.state == "live" && (!ok || !live):
			lost = append(lost, fmt.Sprintf("session %s: acknowledged start lost (present %t, live %t)", key, ok, live))
		case s.state == "stopped" && (!ok || live):
			lost = append(lost, fmt.Sprintf("session %s: acknowledged stop lost (present %t, live %t)", key, ok, live))
		case s.state == "unknown" && s.startAcked && !ok:
			lost = append(lost, fmt.Sprintf("session %s: acknowledged start lost (stop unacknowledged)", key))
		}
	}
	// Day passes: the fleet's first use (the same register at every box:
	// converged) is a login the test sent, no later than the earliest
	// acknowledged one; every box's member page decision ends 24 h after it.
	for _, m := range members {
		p := m.dayPass
		if p == nil {
			continue
		}
		msg, first := p.problem(d)
		if msg != "" {
			lost = append(lost, fmt.Sprintf("day pass %s of %s: %s", p.id, m.email, msg))
			continue
		}
		if first.IsZero() {
			continue // never used
		}
		for _, b := range f.boxes {
			var ex admin.Explanation
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := b.admin().Get(ctx, "/v1/explain", url.Values{"user": {m.email}}, &ex)
			cancel()
			if want := first.Add(24 * time.Hour); err != nil || !ex.Decision.ValidUntil.Equal(want) {
				lost = append(lost, fmt.Sprintf("day pass %s of %s: ends %s at %s (err %v), want %s (24 h after the first use)",
					p.id, m.email, ex.Decision.ValidUntil.Format(time.RFC3339Nano), b.id, err, want.Format(time.RFC3339Nano)))
			}
		}
	}
	for _, c := range certs {
		if _, ok := register(d, peer.KindCert, c.serial); !ok {
			lost = append(lost, fmt.Sprintf("certificate %s: issued, unknown to the fleet", c.serial))
		}
		_, rev := register(d, peer.KindCertRevoked, c.serial)
		switch {
		case c.revoked && !rev:
			lost = append(lost, fmt.Sprintf("certificate %s: acknowledged revocation lost", c.serial))
		case c.member.ended && !rev: // an ended membership revokes the member's certificates
			lost = append(lost, fmt.Sprintf("certificate %s of ended member %s: not revoked", c.serial, c.member.email))
		case !c.revokeTried && !c.member.ended && rev:
			lost = append(lost, fmt.Sprintf("certificate %s: revoked although nobody revoked it", c.serial))
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		if len(lost) > 30 {
			lost = append(lost[:30], fmt.Sprintf("… and %d more", len(lost)-30))
		}
		t.Errorf("after %d operations (seed %d):\n%s", nops, seed, strings.Join(lost, "\n"))
	}
	// A few passwords through RADIUS at every box.
	online := map[*jMember]bool{} // a device limit may refuse members with devices online
	for _, s := range sessions {
		if s.state != "stopped" {
			online[s.member] = true
		}
	}
	for _, m := range dayLogins {
		online[m] = true
	}
	checked := 0
	for _, m := range members {
		if m.pw == "" || m.ended || online[m] || checked == 3 {
			continue
		}
		checked++
		for _, b := range f.boxes {
			if !b.pap(m.email, m.pw, "02-00-00-00-ff-01") {
				t.Errorf("%s rejects %s's acknowledged password", b.id, m.email)
			}
		}
	}
	t.Logf("whole test %s; %d members, %d sessions, %d certificates, %d day passes used by %d logins",
		time.Since(began).Round(time.Millisecond), len(members), len(sessions), len(certs), len(usedPasses), len(dayLogins))
}
