package peer

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deskgate/deskgate/appliance/creds"
	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/store"
	"github.com/deskgate/deskgate/internal/atomicfile"
)

// Options configure a Node.
type Options struct {
	Store   *store.Store
	DataDir string // the fleet's files live in DataDir/fleet
	// Listen is the host:port of the fleet listener ("" = dial out only).
	Listen string
	// Advertise is the host:port other boxes dial to reach this one;
	// default Listen.
	Advertise string
	// Peers are wss://host:port URLs to dial.
	Peers []string
	// Locations are the OfficeRnD location names this box serves.
	Locations []string
	// Version is this box's software version, advertised to the fleet
	// in its box register ("" = not advertised).
	Version      string
	Now          func() time.Time
	Log          *slog.Logger
	PingInterval time.Duration // default 5s
	// Takeover queues a member's welcome email on this box; the node
	// calls it for accounts whose owner box has not sent it after
	// TakeoverAfter (default 10m), checking every TakeoverEvery (15s).
	Takeover      func(memberID string) error
	TakeoverAfter time.Duration
	TakeoverEvery time.Duration
	// RadiusName is the EAP server name every box of the fleet shares
	// (radius.eap.server_name); "" = no fleet RADIUS certificate.
	RadiusName string
	// OnHint receives a webhook body relayed by peer box.
	OnHint func(box string, body []byte)
	// OnApplied is told the kinds of the entries a batch from a peer
	// added (after its commit).
	OnApplied func(kinds map[string]bool)
	// CheckConfig validates a fleet configuration document (plans,
	// groups, locations, roaming) against this box's own settings;
	// ApplyConfig makes it this box's. Both nil: the box cannot take
	// part in fleet configuration (it refuses pushes).
	CheckConfig func(doc []byte) error
	ApplyConfig func(doc []byte) error
}

// Node is this box's member of the fleet.
type Node struct {
	opts  Options
	st    *store.Store
	log   *slog.Logger
	now   func() time.Time
	files files
	clk   *clock

	mu      sync.Mutex
	keys    *keys
	rep     *replica
	removed map[string]bool
	links   map[string]*link
	urlBox  map[string]string // dialed URL -> box id seen there
	dialing map[string]bool
	lastErr map[string]string // peer URL -> last dial error
	cut     map[string]bool   // fault injection (tests): boxes this box refuses

	book      *certBook              // verified box certificates, for entry signatures
	sessMarks map[string]sessionMark // local session key -> last origination
	votes     map[string]*voteBox    // fleet config pushes waiting for votes
	cfgMu     sync.Mutex             // one applyConfig at a time
	cfgKick   chan struct{}          // a configuration register arrived
	addr      string                 // the fleet listener's address once listening

	started   chan struct{}
	startOnce sync.Once

	chunks atomic.Pointer[ChunkHandler] // rollout.go
}

// New loads the box's fleet identity, if any. It does not listen or dial
// until Run.
func New(opts Options) (*Node, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 5 * time.Second
	}
	if opts.TakeoverAfter <= 0 {
		opts.TakeoverAfter = 10 * time.Minute
	}
	if opts.TakeoverEvery <= 0 {
		opts.TakeoverEvery = 15 * time.Second
	}
	n := &Node{
		opts: opts, st: opts.Store, log: opts.Log, now: opts.Now,
		files: files{dir: filepath.Join(opts.DataDir, "fleet")}, clk: &clock{now: opts.Now},
		removed: map[string]bool{}, links: map[string]*link{}, urlBox: map[string]string{},
		dialing: map[string]bool{}, lastErr: map[string]string{}, cut: map[string]bool{}, started: make(chan struct{}),
		cfgKick: make(chan struct{}, 1), book: newCertBook(),
	}
	k, err := n.files.load()
	if err != nil {
		return nil, err
	}
	if k != nil {
		if err := n.adopt(k); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// adopt makes k this box's identity and lets Run start the fleet.
func (n *Node) adopt(k *keys) error {
	rep := &replica{self: k.id.BoxID, key: k.boxKey, clk: n.clk, now: n.now}
	if err := n.loadCerts(k); err != nil {
		return err
	}
	var removed map[string]bool
	err := n.st.View(func(tx *store.Tx) error {
		var err error
		if _, removed, err = boxes(tx); err != nil {
			return err
		}
		seq, err := seqOf(tx, k.id.BoxID)
		if err != nil || seq == 0 {
			return err
		}
		var last Entry
		if err := tx.GetKV(bucketLog, logKey(k.id.BoxID, seq), &last); err != nil {
			return err
		}
		n.clk.Observe(last.Time) // never stamp below what this box issued before
		return nil
	})
	if err != nil {
		return fmt.Errorf("load fleet state: %w", err)
	}
	n.mu.Lock()
	n.keys, n.rep, n.removed = k, rep, removed
	n.mu.Unlock()
	n.st.SetAuditHook(n.auditHook)
	n.startOnce.Do(func() { close(n.started) })
	return nil
}

func (n *Node) current() (*keys, *replica) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.keys, n.rep
}

// BoxID returns this box's id, "" when it is in no fleet.
func (n *Node) BoxID() string {
	k, _ := n.current()
	if k == nil {
		return ""
	}
	return k.id.BoxID
}

// ErrNotInFleet is returned by operations that need a fleet.
var ErrNotInFleet = errors.New("this box is in no fleet (run deskgate fleet init or fleet join)")

// ErrInFleet is returned by init and join on a box that is in a fleet.
var ErrInFleet = errors.New("this box is already in a fleet")

// Init creates a fleet with this box as its first member and CA.
func (n *Node) Init(boxID string) (Identity, error) {
	if err := CheckBoxID(boxID); err != nil {
		return Identity{}, err
	}
	if k, _ := n.current(); k != nil {
		return Identity{}, ErrInFleet
	}
	now := n.now()
	fleetID, err := randomHex(8)
	if err != nil {
		return Identity{}, err
	}
	ca, caKey, err := newCA(fleetID, now)
	if err != nil {
		return Identity{}, err
	}
	boxKey, err := newKey()
	if err != nil {
		return Identity{}, err
	}
	boxCert, err := signBox(ca, caKey, boxID, &boxKey.PublicKey, now)
	if err != nil {
		return Identity{}, err
	}
	secret := make([]byte, 32)
	if _, err := randRead(secret); err != nil {
		return Identity{}, err
	}
	k := &keys{id: Identity{BoxID: boxID, FleetID: fleetID, Joined: now}, ca: ca, caKey: caKey, boxCert: boxCert, boxKey: boxKey, secret: secret}
	if n.opts.RadiusName != "" {
		rkey, err := newKey()
		if err != nil {
			return Identity{}, err
		}
		rcert, err := signRadius(ca, caKey, n.opts.RadiusName, &rkey.PublicKey, now)
		if err != nil {
			return Identity{}, err
		}
		if err := n.files.saveRadius(rcert, rkey); err != nil {
			return Identity{}, fmt.Errorf("fleet init: %w", err)
		}
	}
	if err := n.makeIssuing(ca, caKey, boxID, now); err != nil {
		return Identity{}, fmt.Errorf("fleet init: %w", err)
	}
	if err := n.files.save(k); err != nil {
		return Identity{}, fmt.Errorf("fleet init: %w", err)
	}
	if err := n.adopt(k); err != nil {
		return Identity{}, err
	}
	_, rep := n.current()
	var adopted int
	if err := n.st.Update(func(tx *store.Tx) error { var err error; adopted, err = rep.adoptAccounts(tx); return err }); err != nil {
		return Identity{}, fmt.Errorf("fleet init: adopt existing accounts: %w", err)
	}
	n.log.Info("fleet created", "box", boxID, "fleet", fleetID, "ca_fingerprint", Fingerprint(ca), "accounts_adopted", adopted)
	return k.id, nil
}

// invite is a stored join token: only the secret's hash.
type invite struct {
	Hash    []byte    `json:"hash"`
	Expires time.Time `json:"expires"`
	UsedBy  string    `json:"usedBy,omitempty"`
}

// Invite makes a single-use join token valid for ttl.
func (n *Node) Invite(ttl time.Duration) (string, time.Time, error) {
	k, _ := n.current()
	if k == nil {
		return "", time.Time{}, ErrNotInFleet
	}
	if ttl <= 0 || ttl > 7*24*time.Hour {
		return "", time.Time{}, fmt.Errorf("invite ttl %s: want more than 0 and at most 7 days", ttl)
	}
	if k.caKey == nil {
		return n.signedInvite(k, ttl)
	}
	addr := n.advertise()
	if addr == "" {
		return "", time.Time{}, errors.New("fleet.listen is not set: a box that invites must accept connections")
	}
	id, err := randomHex(8)
	if err != nil {
		return "", time.Time{}, err
	}
	secret := make([]byte, 32)
	if _, err := randRead(secret); err != nil {
		return "", time.Time{}, err
	}
	sum := sha256.Sum256(secret)
	exp := n.now().Add(ttl)
	if err := n.st.Update(func(tx *store.Tx) error {
		return tx.PutKV(bucketInvites, id, invite{Hash: sum[:], Expires: exp})
	}); err != nil {
		return "", time.Time{}, fmt.Errorf("store invite: %w", err)
	}
	n.log.Info("fleet invite created", "token", id, "expires", exp)
	return Token{CAFingerprint: Fingerprint(k.ca), Addr: addr, ID: id, Secret: secret}.Encode(), exp, nil
}

func (n *Node) advertise() string {
	if n.opts.Advertise != "" {
		return n.opts.Advertise
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.addr != "" {
		return n.addr
	}
	return n.opts.Listen
}

// selfURL is the URL other boxes dial to reach this one ("" = none).
func (n *Node) selfURL() string {
	a := n.advertise()
	if a == "" {
		return ""
	}
	return "wss://" + a
}

// Remove appends a replicated removal of box.
func (n *Node) Remove(box string) error {
	k, rep := n.current()
	if k == nil {
		return ErrNotInFleet
	}
	if err := CheckBoxID(box); err != nil {
		return err
	}
	if box == k.id.BoxID {
		return errors.New("a box cannot remove itself; run fleet remove on another box")
	}
	err := n.st.Update(func(tx *store.Tx) error {
		if _, ok, err := register(tx, KindRemoved, box); err != nil || ok {
			if ok {
				return fmt.Errorf("box %s is already removed", box)
			}
			return err
		}
		if _, ok, err := register(tx, KindBox, box); err != nil || !ok {
			if !ok {
				return fmt.Errorf("box %s is not in the fleet", box)
			}
			return err
		}
		_, err := rep.originate(tx, KindRemoved, box, RemovedValue{By: k.id.BoxID})
		return err
	})
	if err != nil {
		return fmt.Errorf("fleet remove %s: %w", box, err)
	}
	n.log.Info("fleet box removed", "box", box)
	n.refresh()
	return nil
}

// refresh re-reads the removal set, closes links to removed boxes and
// nudges every link.
func (n *Node) refresh() {
	var removed map[string]bool
	if err := n.st.View(func(tx *store.Tx) error {
		var err error
		_, removed, err = boxes(tx)
		return err
	}); err != nil {
		n.log.Error("fleet: read removals", "err", err)
		return
	}
	n.mu.Lock()
	n.removed = removed
	var drop []*link
	var live []*link
	for id, l := range n.links {
		if removed[id] {
			drop = append(drop, l)
		} else {
			live = append(live, l)
		}
	}
	n.mu.Unlock()
	for _, l := range drop {
		l.close("box was removed from the fleet")
	}
	for _, l := range live {
		l.nudge()
	}
}

func (n *Node) isRemoved(box string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.removed[box]
}

// RecordPassword originates, inside the transaction that stores it, a
// member-chosen password (its NT hash) for the fleet, so the write gets
// its HLC stamp at once and a concurrent remote write is merged against
// it. Outside a fleet it does nothing.
func (n *Node) RecordPassword(tx *store.Tx, memberID string, ntHash []byte) error {
	k, rep := n.current()
	if k == nil {
		return nil
	}
	if _, err := rep.originate(tx, KindPassword, memberID, PasswordValue{NTHash: ntHash}); err != nil {
		return fmt.Errorf("fleet: record password of %s: %w", memberID, err)
	}
	return nil
}

// DerivePassword returns member's WiFi password derived from the fleet
// secret, or ok=false when the box is in no fleet.
func (n *Node) DerivePassword(memberID string, length int) (string, bool, error) {
	k, _ := n.current()
	if k == nil {
		return "", false, nil
	}
	pw, err := creds.DerivePassword(k.secret, memberID, 0, length)
	return pw, err == nil, err
}

// ClaimWelcome decides, inside the transaction creating member's account,
// whether this box queues the welcome email: outside a fleet always; in a
// fleet only the owner (see docs/fleet.md), and never when any box has
// marked it already. A claim originates the replicated mark in tx.
func (n *Node) ClaimWelcome(tx *store.Tx, memberID, location string) (bool, error) {
	k, rep := n.current()
	if k == nil {
		return true, nil
	}
	if _, ok, err := register(tx, KindWelcome, memberID); err != nil || ok {
		return false, err
	}
	all, _, err := boxes(tx)
	if err != nil {
		return false, err
	}
	var serving []string
	for id, b := range all {
		if location != "" && slices.Contains(b.Locations, location) {
			serving = append(serving, id)
		}
	}
	if len(serving) == 0 {
		serving = append(n.livePeers(), k.id.BoxID)
	}
	if slices.Min(serving) != k.id.BoxID {
		return false, nil
	}
	if _, err := rep.originate(tx, KindWelcome, memberID, WelcomeValue{Box: k.id.BoxID}); err != nil {
		return false, err
	}
	return true, nil
}

// TakeOverWelcome decides, inside tx, whether this box queues member's
// welcome email in place of an owner that did not: never when a box has
// marked it; the owner itself always; otherwise only when the owner is
// not linked and this box is the lowest id among the live boxes. A
// takeover originates the mark, so no box sends it again.
func (n *Node) TakeOverWelcome(tx *store.Tx, memberID, location string) (bool, error) {
	k, rep := n.current()
	if k == nil {
		return false, nil
	}
	if _, ok, err := register(tx, KindWelcome, memberID); err != nil || ok {
		return false, err
	}
	all, _, err := boxes(tx)
	if err != nil {
		return false, err
	}
	self := k.id.BoxID
	live := append(n.livePeers(), self)
	owner := ""
	for id, b := range all {
		if location != "" && slices.Contains(b.Locations, location) && (owner == "" || id < owner) {
			owner = id
		}
	}
	switch {
	case owner == self:
	case owner != "" && slices.Contains(live, owner):
		return false, nil
	default:
		live = slices.DeleteFunc(live, func(id string) bool { return id == owner })
		if slices.Min(live) != self {
			return false, nil
		}
	}
	if _, err := rep.originate(tx, KindWelcome, memberID, WelcomeValue{Box: self}); err != nil {
		return false, err
	}
	n.log.Info("fleet: taking over a welcome email", "member", memberID, "owner", owner)
	return true, nil
}

// takeovers periodically offers Options.Takeover the accounts created
// since this box joined whose welcome nobody marked within TakeoverAfter.
func (n *Node) takeovers(ctx context.Context, k *keys) {
	if n.opts.Takeover == nil {
		return
	}
	t := time.NewTicker(n.opts.TakeoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := n.now()
		var due []string
		err := n.st.View(func(tx *store.Tx) error {
			marked, err := registers(tx, KindWelcome)
			if err != nil {
				return err
			}
			return tx.ForEachAccount(func(a model.Account) error {
				age := now.Sub(a.CreatedAt)
				// A week on, a welcome nobody could send is given up.
				if _, ok := marked[a.MemberID]; !ok && a.CreatedAt.After(k.id.Joined) && age >= n.opts.TakeoverAfter && age < 7*24*time.Hour {
					due = append(due, a.MemberID)
				}
				return nil
			})
		})
		if err != nil {
			n.log.Error("fleet: scan for welcome takeovers", "err", err)
			continue
		}
		for _, m := range due {
			if err := n.opts.Takeover(m); err != nil {
				n.log.Error("fleet: welcome takeover", "member", m, "err", err)
			}
		}
	}
}

func (n *Node) livePeers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for id, l := range n.links {
		if l.up() {
			out = append(out, id)
		}
	}
	return out
}

// tlsCert is this box's certificate chain (box, CA) and key.
func (k *keys) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{k.boxCert.Raw, k.ca.Raw}, PrivateKey: k.boxKey, Leaf: k.boxCert}
}

func (k *keys) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(k.ca)
	return p
}

// verifyPeer checks a peer's box certificate: signed by the fleet CA at
// the daemon's time, for usage, a valid box id, not removed, not self.
func (n *Node) verifyPeer(k *keys, certs []*x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	if len(certs) == 0 {
		return "", errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: k.pool(), Intermediates: inter, CurrentTime: n.now(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("certificate not from this fleet's CA: %w", err)
	}
	id := certs[0].Subject.CommonName
	if err := CheckBoxID(id); err != nil {
		return "", err
	}
	if id == k.id.BoxID {
		return "", errors.New("peer presents this box's own identity")
	}
	if n.isRemoved(id) {
		return "", fmt.Errorf("box %s was removed from the fleet", id)
	}
	return id, nil
}

const joinSNI = "join.fleet.deskgate.invalid"

// serverTLS is the fleet listener's TLS configuration: join connections
// (SNI joinSNI) need no client certificate and may only join; every other
// connection must present a box certificate of this fleet.
func (n *Node) serverTLS(k *keys) *tls.Config {
	cert := k.tlsCert()
	link := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    k.pool(),
		Time:         n.now,
		NextProtos:   []string{"http/1.1"},
		VerifyPeerCertificate: func(_ [][]byte, chains [][]*x509.Certificate) error {
			if len(chains) == 0 {
				return errors.New("fleet: no verified chain")
			}
			_, err := n.verifyPeer(k, chains[0], x509.ExtKeyUsageClientAuth)
			if err != nil {
				n.log.Warn("fleet: refused peer", "reason", err, "subject", chains[0][0].Subject.CommonName)
			}
			return err
		},
	}
	join := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, Time: n.now, NextProtos: []string{"http/1.1"}}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			if h.ServerName == joinSNI {
				return join, nil
			}
			return link, nil
		},
	}
}

// clientTLS is the configuration for dialing a peer: our box certificate,
// and the server's checked against the fleet CA (not a host name: boxes
// are reached by address).
func (n *Node) clientTLS(k *keys) *tls.Config {
	cert := k.tlsCert()
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Always present the box certificate, so a server of another fleet
		// refuses it by name rather than seeing no certificate.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		InsecureSkipVerify:   true, // verified by VerifyConnection against the fleet CA
		Time:                 n.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := n.verifyPeer(k, cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			return err
		},
	}
}

// Run serves the fleet listener, dials peers and replicates until ctx
// ends. Before the box is in a fleet it waits for init or join.
func (n *Node) Run(ctx context.Context) error {
	var ln net.Listener
	if n.opts.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", n.opts.Listen); err != nil {
			return fmt.Errorf("listen for fleet peers on %s: %w", n.opts.Listen, err)
		}
		n.mu.Lock()
		n.addr = ln.Addr().String()
		n.mu.Unlock()
	}
	select {
	case <-ctx.Done():
		if ln != nil {
			ln.Close()
		}
		return nil
	case <-n.started:
	}
	k, _ := n.current()
	if err := n.announceIssuer(k); err != nil {
		n.log.Error("fleet: announce the EAP-TLS issuing CA", "err", err)
	}
	if err := n.announce(k); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	var wg sync.WaitGroup
	if ln != nil {
		srv := &http.Server{
			Handler:           n.handler(ctx, k),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(n.log.With("component", "fleet-listener").Handler(), slog.LevelWarn),
		}
		tln := tls.NewListener(ln, n.serverTLS(k))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Serve(tln)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	wg.Add(3)
	go func() { defer wg.Done(); n.takeovers(ctx, k) }()
	go func() { defer wg.Done(); n.watch(ctx) }()
	go func() { defer wg.Done(); n.dialAll(ctx, k) }()
	<-ctx.Done()
	n.mu.Lock()
	var ls []*link
	for _, l := range n.links {
		ls = append(ls, l)
	}
	n.mu.Unlock()
	for _, l := range ls {
		l.close("shutting down")
	}
	wg.Wait()
	return nil
}

// announce originates this box's register when its URL or locations
// changed.
func (n *Node) announce(k *keys) error {
	_, rep := n.current()
	want := BoxValue{URL: n.selfURL(), Locations: n.opts.Locations, CA: k.caKey != nil, Version: n.opts.Version}
	return n.st.Update(func(tx *store.Tx) error {
		cur, ok, err := register(tx, KindBox, k.id.BoxID)
		if err != nil {
			return err
		}
		if ok {
			var v BoxValue
			if json.Unmarshal(cur.Value, &v) == nil && v.URL == want.URL && slices.Equal(v.Locations, want.Locations) && v.CA == want.CA && v.Version == want.Version {
				return nil
			}
		}
		_, err = rep.originate(tx, KindBox, k.id.BoxID, want)
		return err
	})
}

// watch turns store commits into work: account changes are reconciled
// with the password registers, and every commit nudges the links.
func (n *Node) watch(ctx context.Context) {
	ch, cancel := n.st.Subscribe(1024)
	defer cancel()
	_, rep := n.current()
	n.reconcileAll(rep)
	n.applyConfig()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ticks := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.cfgKick:
			n.applyConfig()
		case <-tick.C:
			n.nudgeAll()
			if ticks++; ticks%600 == 0 { // every 10 minutes
				n.pruneSessions()
				if _, err := n.Compact(); err != nil {
					n.log.Error("fleet: compact the log", "err", err)
				}
			}
		case c, ok := <-ch:
			if !ok {
				return
			}
			// Take what else is pending, so a burst is one transaction.
			var members []string
			resync := false
			for more := true; more; {
				switch {
				case c.Kind == store.KindResync:
					resync = true
				case c.Kind == store.KindAccount && !c.Deleted && c.Member != "":
					members = append(members, c.Member)
				}
				select {
				case c, more = <-ch:
				default:
					more = false
				}
			}
			if resync {
				n.reconcileAll(rep)
			} else {
				n.reconcile(rep, members...)
			}
			n.nudgeAll()
		}
	}
}

func (n *Node) reconcileAll(rep *replica) {
	var members []string
	_ = n.st.View(func(tx *store.Tx) error {
		return tx.ForEachAccount(func(a model.Account) error { members = append(members, a.MemberID); return nil })
	})
	n.reconcile(rep, members...)
}

// reconcile runs reconcileAccount for members, in one transaction and
// only for those whose account and password register disagree.
func (n *Node) reconcile(rep *replica, members ...string) {
	var differ []string
	err := n.st.View(func(tx *store.Tx) error {
		for _, m := range members {
			d, err := accountDiffers(tx, m)
			if err != nil {
				return err
			}
			if d && !slices.Contains(differ, m) {
				differ = append(differ, m)
			}
		}
		return nil
	})
	if err == nil && len(differ) > 0 {
		err = n.st.Update(func(tx *store.Tx) error {
			for _, m := range differ {
				if _, err := rep.reconcileAccount(tx, m); err != nil {
					return fmt.Errorf("member %s: %w", m, err)
				}
			}
			return nil
		})
	}
	if err != nil {
		n.log.Error("fleet: reconcile accounts", "members", len(members), "err", err)
	}
}

func (n *Node) nudgeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		l.nudge()
	}
}

// handler serves the join endpoint and the link websocket.
func (n *Node) handler(ctx context.Context, k *keys) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /fleet/v1/join", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.ServerName != joinSNI {
			http.Error(w, "join over the join connection only", http.StatusMisdirectedRequest)
			return
		}
		n.handleJoin(w, r, k)
	})
	mux.HandleFunc("GET /fleet/v1/link", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.ServerName == joinSNI || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "a box certificate is required", http.StatusForbidden)
			return
		}
		n.acceptLink(ctx, k, w, r)
	})
	return mux
}

// joinRequest is what a joining box posts.
type joinRequest struct {
	TokenID string `json:"tokenId"`
	Secret  []byte `json:"secret"`
	BoxID   string `json:"boxId"`
	CSR     []byte `json:"csr"`
	// RadiusCSR asks for the RADIUS server certificate of RadiusName.
	RadiusCSR  []byte `json:"radiusCsr,omitempty"`
	RadiusName string `json:"radiusName,omitempty"`
	// IssuingCSR asks for the box's EAP-TLS issuing CA (certs.go).
	IssuingCSR []byte `json:"issuingCsr,omitempty"`
	// A token another box signed (invite.go).
	Inviter   string `json:"inviter,omitempty"`
	Expires   int64  `json:"expires,omitempty"`
	InviteSig []byte `json:"inviteSig,omitempty"`
}

type joinResponse struct {
	Cert       []byte   `json:"cert"`
	RadiusCert []byte   `json:"radiusCert,omitempty"`
	CA         []byte   `json:"ca"`
	Secret     []byte   `json:"secret"`
	FleetID    string   `json:"fleetId"`
	Peers      []string `json:"peers"`
	// IssuingCert is the joiner's EAP-TLS issuing CA (certs.go).
	IssuingCert []byte `json:"issuingCert,omitempty"`
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request, k *keys) {
	var req joinRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		n.log.Warn("fleet join refused", "reason", "malformed request", "remote", r.RemoteAddr)
		http.Error(w, "malformed join request", http.StatusBadRequest)
		return
	}
	icsr, err := parseIssuingCSR(req.IssuingCSR)
	if err != nil {
		n.log.Warn("fleet join refused", "reason", err.Error(), "token", safeID(req.TokenID), "box", safeID(req.BoxID), "remote", r.RemoteAddr)
		http.Error(w, "join refused: "+err.Error(), http.StatusForbidden)
		return
	}
	cert, rcert, reason, err := n.admit(k, req)
	if err != nil {
		n.log.Error("fleet join", "err", err)
		http.Error(w, "join failed", http.StatusInternalServerError)
		return
	}
	if reason != "" {
		n.log.Warn("fleet join refused", "reason", reason, "token", safeID(req.TokenID), "box", safeID(req.BoxID), "remote", r.RemoteAddr)
		http.Error(w, "join refused: "+reason, http.StatusForbidden)
		return
	}
	var peers []string
	if u := n.selfURL(); u != "" {
		peers = append(peers, u)
	}
	_ = n.st.View(func(tx *store.Tx) error {
		all, _, err := boxes(tx)
		for _, id := range sortedKeys(all) {
			if all[id].URL != "" && !slices.Contains(peers, all[id].URL) {
				peers = append(peers, all[id].URL)
			}
		}
		return err
	})
	n.log.Info("fleet box joined", "box", req.BoxID, "token", req.TokenID, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	resp := joinResponse{Cert: pemCert(cert), CA: pemCert(k.ca), Secret: k.secret, FleetID: k.id.FleetID, Peers: peers}
	if rcert != nil {
		resp.RadiusCert = pemCert(rcert)
	}
	if icsr != nil && canSignIntermediates(k.ca) {
		icert, err := signIssuing(k.ca, k.caKey, req.BoxID, icsr.PublicKey, n.now())
		if err != nil {
			n.log.Error("fleet join: issuing CA not signed", "box", req.BoxID, "err", err)
		} else {
			resp.IssuingCert = pemCert(icert)
		}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func safeID(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return fmt.Sprintf("%q", s)
}

// admit checks a join request and signs its CSR, marking the token used
// in the same transaction. A non-empty reason means refused.
func (n *Node) admit(k *keys, req joinRequest) (*x509.Certificate, *x509.Certificate, string, error) {
	if k.caKey == nil {
		return nil, nil, "this box holds no fleet CA key", nil
	}
	if err := CheckBoxID(req.BoxID); err != nil {
		return nil, nil, err.Error(), nil
	}
	if req.BoxID == k.id.BoxID {
		return nil, nil, "box id " + req.BoxID + " is taken", nil
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return nil, nil, "malformed certificate request", nil
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, "certificate request signature invalid", nil
	}
	var rcsr *x509.CertificateRequest
	if len(req.RadiusCSR) > 0 || req.RadiusName != "" {
		if req.RadiusName != n.opts.RadiusName || n.opts.RadiusName == "" {
			return nil, nil, fmt.Sprintf("radius.eap.server_name %.100q differs from the fleet's %q: every box must use the same", req.RadiusName, n.opts.RadiusName), nil
		}
		if rcsr, err = x509.ParseCertificateRequest(req.RadiusCSR); err != nil || rcsr.CheckSignature() != nil {
			return nil, nil, "malformed RADIUS certificate request", nil
		}
	}
	now := n.now()
	var cert, rcert *x509.Certificate
	var reason string
	err = n.st.Update(func(tx *store.Tx) error {
		var inv invite
		err := tx.GetKV(bucketInvites, req.TokenID, &inv)
		if errors.Is(err, store.ErrNotFound) && req.Inviter != "" && req.Inviter != k.id.BoxID {
			inv, reason, err = n.signedInviteRecord(tx, k, req)
			if err != nil || reason != "" {
				return err
			}
		} else if errors.Is(err, store.ErrNotFound) {
			reason = "join token invalid"
			return nil
		}
		if err != nil {
			return err
		}
		sum := sha256.Sum256(req.Secret)
		switch {
		case subtle.ConstantTimeCompare(sum[:], inv.Hash) != 1:
			reason = "join token invalid"
			return nil
		case inv.UsedBy != "":
			reason = "join token already used"
			return nil
		case now.After(inv.Expires):
			reason = "join token expired"
			return nil
		}
		if _, ok, err := register(tx, KindRemoved, req.BoxID); err != nil || ok {
			if ok {
				reason = "box id " + req.BoxID + " was removed from the fleet"
			}
			return err
		}
		if _, ok, err := register(tx, KindBox, req.BoxID); err != nil || ok {
			if ok {
				reason = "box id " + req.BoxID + " is taken"
			}
			return err
		}
		taken := false
		if err := tx.ForEachKV(bucketInvites, "", func(_ string, raw []byte) error {
			var o invite
			if json.Unmarshal(raw, &o) == nil && o.UsedBy == req.BoxID {
				taken = true
			}
			return nil
		}); err != nil {
			return err
		}
		if taken {
			reason = "box id " + req.BoxID + " is taken"
			return nil
		}
		if cert, err = signBox(k.ca, k.caKey, req.BoxID, csr.PublicKey, now); err != nil {
			reason = err.Error()
			return nil
		}
		if rcsr != nil {
			if rcert, err = signRadius(k.ca, k.caKey, n.opts.RadiusName, rcsr.PublicKey, now); err != nil {
				reason = err.Error()
				return nil
			}
		}
		inv.UsedBy = req.BoxID
		return tx.PutKV(bucketInvites, req.TokenID, inv)
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("admit %s: %w", req.BoxID, err)
	}
	return cert, rcert, reason, nil
}

// Join asks the box named in token for a certificate and makes this box
// a member of its fleet.
func (n *Node) Join(ctx context.Context, token, boxID string) (Identity, error) {
	if k, _ := n.current(); k != nil {
		return Identity{}, ErrInFleet
	}
	if err := CheckBoxID(boxID); err != nil {
		return Identity{}, err
	}
	tok, err := ParseToken(token)
	if err != nil {
		return Identity{}, err
	}
	key, err := newKey()
	if err != nil {
		return Identity{}, err
	}
	csr, err := x509.CreateCertificateRequest(randReader, &x509.CertificateRequest{Subject: pkixName(boxID)}, key)
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join: certificate request: %w", err)
	}
	var pinned *x509.Certificate
	tcfg := &tls.Config{
		MinVersion: tls.VersionTLS13, ServerName: joinSNI, InsecureSkipVerify: true, // pinned below
		VerifyConnection: func(cs tls.ConnectionState) error {
			certs := cs.PeerCertificates
			if len(certs) < 2 {
				return errors.New("the box presents no fleet CA")
			}
			ca := certs[len(certs)-1]
			if Fingerprint(ca) != tok.CAFingerprint {
				return errors.New("the box's fleet CA does not match the token's fingerprint")
			}
			p := x509.NewCertPool()
			p.AddCert(ca)
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: p, CurrentTime: n.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fmt.Errorf("the box's certificate: %w", err)
			}
			pinned = ca
			return nil
		},
	}
	jreq := joinRequest{TokenID: tok.ID, Secret: tok.Secret, BoxID: boxID, CSR: csr, Inviter: tok.Inviter, Expires: tok.Expires, InviteSig: tok.Sig}
	var rkey *ecdsa.PrivateKey
	if n.opts.RadiusName != "" {
		if rkey, err = newKey(); err != nil {
			return Identity{}, err
		}
		jreq.RadiusName = n.opts.RadiusName
		if jreq.RadiusCSR, err = x509.CreateCertificateRequest(randReader, &x509.CertificateRequest{Subject: pkixName(n.opts.RadiusName), DNSNames: []string{n.opts.RadiusName}}, rkey); err != nil {
			return Identity{}, fmt.Errorf("fleet join: RADIUS certificate request: %w", err)
		}
	}
	ikey, icsr, err := newIssuingCSR(boxID)
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join: %w", err)
	}
	jreq.IssuingCSR = icsr
	body, _ := json.Marshal(jreq)
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tcfg, ForceAttemptHTTP2: false}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+tok.Addr+"/fleet/v1/join", bytesReader(body))
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join via %s: %w", tok.Addr, err)
	}
	defer resp.Body.Close()
	raw, err := readAllLimit(resp.Body, 256<<10)
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join via %s: read answer: %w", tok.Addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Identity{}, fmt.Errorf("fleet join via %s: %s: %s", tok.Addr, resp.Status, trimBody(raw))
	}
	var jr joinResponse
	if err := json.Unmarshal(raw, &jr); err != nil {
		return Identity{}, fmt.Errorf("fleet join via %s: bad answer: %w", tok.Addr, err)
	}
	cert, err := parseCertPEM(jr.Cert)
	if err != nil {
		return Identity{}, fmt.Errorf("fleet join: certificate: %w", err)
	}
	ca, err := parseCertPEM(jr.CA)
	if err != nil || pinned == nil || !ca.Equal(pinned) {
		return Identity{}, errors.New("fleet join: the answer's CA is not the pinned one")
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || cert.Subject.CommonName != boxID || !pub.Equal(&key.PublicKey) {
		return Identity{}, errors.New("fleet join: the certificate is not for this box")
	}
	if len(jr.Secret) != 32 {
		return Identity{}, errors.New("fleet join: the answer carries no fleet secret")
	}
	k := &keys{id: Identity{BoxID: boxID, FleetID: jr.FleetID, Joined: n.now()}, ca: ca, boxCert: cert, boxKey: key, secret: jr.Secret}
	if rkey != nil {
		rcert, err := parseCertPEM(jr.RadiusCert)
		if err != nil || rcert.CheckSignatureFrom(ca) != nil || !slices.Contains(rcert.DNSNames, n.opts.RadiusName) {
			return Identity{}, errors.New("fleet join: the answer carries no valid RADIUS certificate")
		}
		if err := n.files.saveRadius(rcert, rkey); err != nil {
			return Identity{}, fmt.Errorf("fleet join: %w", err)
		}
	}
	if err := n.saveJoinedIssuing(jr.IssuingCert, ikey, ca); err != nil {
		return Identity{}, err
	}
	if err := n.files.save(k); err != nil {
		return Identity{}, fmt.Errorf("fleet join: %w", err)
	}
	if err := n.saveSeeds(jr.Peers); err != nil {
		return Identity{}, err
	}
	if err := n.adopt(k); err != nil {
		return Identity{}, err
	}
	n.log.Info("fleet joined", "box", boxID, "fleet", jr.FleetID, "via", tok.Addr)
	return k.id, nil
}

const fileSeeds = "seeds.json"

func (n *Node) saveSeeds(urls []string) error {
	var ok []string
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil && p.Scheme == "wss" && p.Host != "" {
			ok = append(ok, u)
		}
	}
	b, _ := json.Marshal(ok)
	if err := atomicfile.Write(n.files.path(fileSeeds), b, 0o600); err != nil {
		return fmt.Errorf("save fleet seeds: %w", err)
	}
	return nil
}

func (n *Node) seeds() []string {
	b, err := os.ReadFile(n.files.path(fileSeeds))
	if err != nil {
		return nil
	}
	var out []string
	_ = json.Unmarshal(b, &out)
	return out
}

// setCut makes this box refuse and close links to boxes (a partition, for
// tests); setCut() heals.
func (n *Node) setCut(boxes ...string) {
	n.mu.Lock()
	n.cut = map[string]bool{}
	for _, b := range boxes {
		n.cut[b] = true
	}
	var drop []*link
	for id, l := range n.links {
		if n.cut[id] {
			drop = append(drop, l)
		}
	}
	n.mu.Unlock()
	for _, l := range drop {
		l.close("partitioned (test)")
	}
}

// Partition cuts this box off from boxes (refusing and closing their
// links, and not dialing them) until the next call; Partition() heals. It
// is the demo's and tests' partition switch: the daemon offers it only
// when started with DESKGATE_DEMO_SWITCHES=1. Cutting the other boxes on
// one box is a whole partition, since a cut box is neither dialed nor
// accepted.
func (n *Node) Partition(boxes ...string) error {
	for _, b := range boxes {
		if err := CheckBoxID(b); err != nil {
			return fmt.Errorf("fleet partition: %w", err)
		}
	}
	n.setCut(boxes...)
	if len(boxes) == 0 {
		n.log.Warn("fleet partition healed (demo switch)")
		n.nudgeAll()
	} else {
		n.log.Warn("fleet partition (demo switch): links to these boxes cut", "boxes", boxes)
	}
	return nil
}

// Cut lists the boxes this box is cut off from by Partition.
func (n *Node) Cut() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedKeys(n.cut)
}

func (n *Node) isCut(box string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[box]
}
