package peer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/deskgate/deskgate/appliance/store"
)

// sendQueue bounds the frames waiting for a link's writer; a peer that
// does not drain it is disconnected and catches up on reconnect.
const sendQueue = 64

// batchSize is how many entries one frame carries at most.
const batchSize = 256

// link is one websocket connection to a peer box.
type link struct {
	n      *Node
	peer   string
	dialer string // box id of the side that dialed
	conn   *websocket.Conn
	out    chan []byte
	kick   chan struct{}
	done   chan struct{}
	once   sync.Once
	since  time.Time

	bytesIn, bytesOut atomic.Int64 // message payload bytes

	mu       sync.Mutex
	certSent map[string]bool // origins whose certificate went out on this link
	helloed  bool
	cursor   map[string]uint64 // per origin: last seq sent to the peer
	theirVV  map[string]uint64
	reason   string
}

func newLink(n *Node, peer, dialer string, conn *websocket.Conn) *link {
	return &link{
		n: n, peer: peer, dialer: dialer, conn: conn, since: n.now(),
		out: make(chan []byte, sendQueue), kick: make(chan struct{}, 1), done: make(chan struct{}),
		cursor: map[string]uint64{}, theirVV: map[string]uint64{}, certSent: map[string]bool{},
	}
}

func (l *link) up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	return l.helloed
}

func (l *link) nudge() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// close ends the link once, logging why.
func (l *link) close(reason string) {
	l.once.Do(func() {
		l.mu.Lock()
		l.reason = reason
		l.mu.Unlock()
		close(l.done)
		_ = l.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, trunc(reason, 100)), time.Now().Add(time.Second))
		_ = l.conn.Close()
		l.n.log.Info("fleet link closed", "peer", l.peer, "reason", reason)
	})
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// enqueue queues a frame; a full queue closes the link.
func (l *link) enqueue(b []byte) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.out <- b:
		return true
	default:
		l.close(fmt.Sprintf("send queue full (%d frames): peer too slow", sendQueue))
		return false
	}
}

func (l *link) send(m Message) bool {
	b, err := json.Marshal(m)
	if err != nil {
		l.close("encode: " + err.Error())
		return false
	}
	return l.enqueue(b)
}

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	// Peers are boxes, not browsers: no Origin.
	CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
}

func (n *Node) acceptLink(ctx context.Context, k *keys, w http.ResponseWriter, r *http.Request) {
	peer := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if _, err := n.learnCert(k, r.TLS.VerifiedChains[0][0].Raw); err != nil {
		n.log.Warn("fleet: peer certificate", "peer", peer, "err", err)
		http.Error(w, "bad box certificate", http.StatusForbidden)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		n.log.Warn("fleet: websocket upgrade failed", "peer", peer, "err", err)
		return
	}
	n.runLink(ctx, k, newLink(n, peer, peer, conn))
}

// runLink registers l (one link per pair), exchanges hellos and runs the
// link until it ends. It reports whether the link came up (hellos
// exchanged).
func (n *Node) runLink(ctx context.Context, k *keys, l *link) bool {
	if ok, why := n.register(k, l); !ok {
		l.once.Do(func() {
			close(l.done)
			_ = l.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, trunc(why, 100)), time.Now().Add(time.Second))
			_ = l.conn.Close()
		})
		n.log.Debug("fleet: duplicate link dropped", "peer", l.peer, "reason", why)
		return false
	}
	defer n.unregister(l)
	n.log.Info("fleet link up", "peer", l.peer, "dialed_by", l.dialer)
	l.conn.SetReadLimit(MaxMessageBytes)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.writeLoop(n.opts.PingInterval) }()
	go func() { defer wg.Done(); l.sendLoop() }()
	stop := context.AfterFunc(ctx, func() { l.close("shutting down") })
	defer stop()
	var vv map[string]uint64
	if err := n.st.View(func(tx *store.Tx) error { var err error; vv, err = readVV(tx); return err }); err != nil {
		l.close("read version vector: " + err.Error())
	} else {
		l.send(Message{Type: TypeHello, Box: k.id.BoxID, VV: vv})
	}
	l.readLoop(3 * n.opts.PingInterval)
	l.close("connection ended")
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.helloed
}

func (n *Node) register(k *keys, l *link) (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.removed[l.peer] {
		return false, "box was removed from the fleet"
	}
	if n.cut[l.peer] {
		return false, "partitioned (test)"
	}
	old := n.links[l.peer]
	if old != nil {
		select {
		case <-old.done:
			old = nil
		default:
		}
	}
	if old == nil {
		n.links[l.peer] = l
		return true, ""
	}
	pref := min(k.id.BoxID, l.peer)
	if l.dialer == old.dialer || l.dialer == pref {
		n.links[l.peer] = l
		go old.close("replaced by the link dialed by " + l.dialer)
		return true, ""
	}
	return false, "a link exists already; the one dialed by " + pref + " is kept"
}

func (n *Node) unregister(l *link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.links[l.peer] == l {
		delete(n.links, l.peer)
	}
}

func (l *link) writeLoop(ping time.Duration) {
	t := time.NewTicker(ping)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case b := <-l.out:
			// I/O deadlines read the wall clock, as net.Conn requires.
			_ = l.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := l.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				l.close("write: " + err.Error())
				return
			}
			l.bytesOut.Add(int64(len(b)))
		case <-t.C:
			if err := l.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
				l.close("ping: " + err.Error())
				return
			}
		}
	}
}

func (l *link) readLoop(idle time.Duration) {
	extend := func() { _ = l.conn.SetReadDeadline(time.Now().Add(idle)) }
	extend()
	l.conn.SetPongHandler(func(string) error { extend(); return nil })
	for {
		_, b, err := l.conn.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				l.n.log.Warn("fleet: oversized message, closing link", "peer", l.peer, "limit", MaxMessageBytes)
				l.close(fmt.Sprintf("oversized message (limit %d bytes)", MaxMessageBytes))
			default:
				l.close("read: " + err.Error())
			}
			return
		}
		extend()
		l.bytesIn.Add(int64(len(b)))
		m, err := Decode(b)
		if err != nil {
			l.n.log.Warn("fleet: malformed message, closing link; nothing applied", "peer", l.peer, "err", err)
			l.close("malformed message: " + err.Error())
			return
		}
		if err := l.handle(m); err != nil {
			l.n.log.Warn("fleet: bad message, closing link", "peer", l.peer, "err", err)
			l.close(err.Error())
			return
		}
	}
}

func (l *link) handle(m Message) error {
	l.mu.Lock()
	helloed := l.helloed
	l.mu.Unlock()
	switch {
	case m.Type == TypeHello:
		if helloed {
			return errors.New("second hello")
		}
		if m.Box != l.peer {
			return fmt.Errorf("hello from %q on a link certified for %q", m.Box, l.peer)
		}
		l.mu.Lock()
		l.helloed = true
		l.theirVV = m.VV
		l.cursor = map[string]uint64{}
		for o, s := range m.VV {
			l.cursor[o] = s
		}
		l.mu.Unlock()
		l.nudge()
		return nil
	case !helloed:
		return fmt.Errorf("%s before hello", m.Type)
	case m.Type == TypeVV:
		l.mu.Lock()
		l.theirVV = m.VV
		l.mu.Unlock()
		return nil
	case m.Type == TypeConfigCheck:
		go l.answerCheck(m.Check)
		return nil
	case m.Type == TypeConfigVote:
		l.n.deliverVote(l.peer, m.Vote)
		return nil
	case m.Type == TypeHint:
		if l.n.opts.OnHint != nil {
			l.n.opts.OnHint(l.peer, m.Hint)
		}
		return nil
	case m.Type == TypeChunkWant || m.Type == TypeChunk:
		return l.handleChunks(m) // rollout.go
	case m.Type == TypeEntries:
		k, _ := l.n.current()
		if err := l.learnCerts(k, m.Certs); err != nil {
			return err
		}
		vv, err := l.n.applyEntries(m.Entries)
		if err != nil {
			return err
		}
		l.send(Message{Type: TypeVV, VV: vv})
		return nil
	}
	return fmt.Errorf("unexpected %s", m.Type)
}

// applyEntries applies a batch in one transaction and returns the
// resulting version vector.
func (n *Node) applyEntries(es []Entry) (map[string]uint64, error) {
	_, rep := n.current()
	var vv map[string]uint64
	var applied []Entry
	var refused []string
	// Signatures first, outside the write transaction: a batch with one
	// entry its origin did not sign is refused whole.
	for _, e := range es {
		if n.isRemoved(e.Origin) {
			continue
		}
		if err := n.book.verify(e); err != nil {
			return nil, fmt.Errorf("entry %s/%d: %w", e.Origin, e.Seq, err)
		}
	}
	err := n.st.Update(func(tx *store.Tx) error {
		tx.LocalAudit() // what applying audits was audited at its origin
		applied, refused = applied[:0], refused[:0]
		for _, e := range es {
			if n.isRemoved(e.Origin) {
				refused = append(refused, e.Origin)
				continue
			}
			ok, err := rep.apply(tx, e)
			if err != nil {
				return fmt.Errorf("entry %s/%d: %w", e.Origin, e.Seq, err)
			}
			if ok {
				applied = append(applied, e)
			}
		}
		var err error
		vv, err = readVV(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apply entries: %w", err)
	}
	if len(refused) > 0 {
		n.log.Warn("fleet: entries of a removed box refused, not applied", "origins", slices.Compact(refused), "entries", len(refused))
	}
	if len(applied) > 0 {
		if slices.ContainsFunc(applied, func(e Entry) bool { return e.Kind == KindConfig }) {
			select {
			case n.cfgKick <- struct{}{}:
			default:
			}
		}
		if slices.ContainsFunc(applied, func(e Entry) bool { return e.Kind == KindRemoved }) {
			n.refresh()
		} else {
			n.nudgeAll()
		}
		n.notifyApplied(applied)
	}
	return vv, nil
}

// sendLoop sends what the peer lacks whenever nudged: after the hello
// that is the anti-entropy catch-up, afterwards live streaming.
func (l *link) sendLoop() {
	for {
		select {
		case <-l.done:
			return
		case <-l.kick:
		}
		for more := true; more; {
			var err error
			if more, err = l.sendSome(); err != nil {
				l.close("read log: " + err.Error())
				return
			}
		}
	}
}

// sendSome sends up to a few batches; more reports whether entries remain.
func (l *link) sendSome() (bool, error) {
	l.mu.Lock()
	if !l.helloed {
		l.mu.Unlock()
		return false, nil
	}
	cursor := maps.Clone(l.cursor)
	l.mu.Unlock()
	var batches [][]Entry
	more := false
	err := l.n.st.View(func(tx *store.Tx) error {
		vv, err := readVV(tx)
		if err != nil {
			return err
		}
		for _, o := range sortedKeys(vv) {
			if o == l.peer || vv[o] <= cursor[o] || l.n.isRemoved(o) {
				continue
			}
			if len(batches) >= 4 {
				more = true
				return nil
			}
			es, err := entriesAfter(tx, o, cursor[o], batchSize)
			if err != nil {
				return err
			}
			if len(es) > 0 {
				batches = append(batches, es)
				cursor[o] = es[len(es)-1].Seq
				if cursor[o] < vv[o] {
					more = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, b := range batches {
		m := Message{Type: TypeEntries, Entries: b}
		o := b[0].Origin
		l.mu.Lock()
		sent := l.certSent[o]
		l.mu.Unlock()
		if !sent {
			_, der := l.n.book.get(o)
			if der == nil {
				return false, fmt.Errorf("no certificate of origin %s to send along", o)
			}
			m.Certs = [][]byte{der}
		}
		if !l.send(m) {
			return false, nil
		}
		l.mu.Lock()
		l.certSent[o] = true
		l.mu.Unlock()
	}
	l.mu.Lock()
	for o, s := range cursor {
		if s > l.cursor[o] {
			l.cursor[o] = s
		}
	}
	l.mu.Unlock()
	return more, nil
}

// dialAll keeps a dialer running for every known peer URL.
func (n *Node) dialAll(ctx context.Context, k *keys) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, u := range n.targets() {
			n.mu.Lock()
			busy := n.dialing[u]
			n.dialing[u] = true
			n.mu.Unlock()
			if !busy {
				go n.dialLoop(ctx, k, u)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// targets are the configured peers, the seeds from joining and the URLs
// other boxes announced, minus this box and removed boxes.
func (n *Node) targets() []string {
	out := append(slices.Clone(n.opts.Peers), n.seeds()...)
	_ = n.st.View(func(tx *store.Tx) error {
		all, _, err := boxes(tx)
		for _, id := range sortedKeys(all) {
			if id != n.BoxID() && all[id].URL != "" {
				out = append(out, all[id].URL)
			}
		}
		return err
	})
	self := n.selfURL()
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(u string) bool { return u == self || u == "" })
}

// boxAt returns the box known to answer at u.
func (n *Node) boxAt(u string) string {
	n.mu.Lock()
	id := n.urlBox[u]
	n.mu.Unlock()
	if id != "" {
		return id
	}
	_ = n.st.View(func(tx *store.Tx) error {
		all, _, err := boxes(tx)
		for bid, b := range all {
			if b.URL == u {
				id = bid
			}
		}
		return err
	})
	return id
}

func (n *Node) linked(box string) bool {
	n.mu.Lock()
	l := n.links[box]
	n.mu.Unlock()
	if l == nil {
		return false
	}
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// Redial backoff: doubling from dialBackoffMin up to dialBackoffMax, each
// wait jittered by ±50%. The cap keeps a healed partition noticed within
// 1.5 × dialBackoffMax (the fleet converges within 5 s of healing); a dial
// to a box that is down costs one TCP SYN every few seconds.
const (
	dialBackoffMin = 200 * time.Millisecond
	dialBackoffMax = 2500 * time.Millisecond
)

// dialLoop dials u whenever no link to the box there exists, with
// exponential backoff and jitter.
func (n *Node) dialLoop(ctx context.Context, k *keys, u string) {
	const minBackoff, maxBackoff = dialBackoffMin, dialBackoffMax
	backoff := minBackoff
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	jitter := func(d time.Duration) time.Duration { return time.Duration(float64(d) * (0.5 + rand.Float64())) }
	failing := false
	for ctx.Err() == nil {
		if id := n.boxAt(u); id != "" && (n.linked(id) || n.isRemoved(id) || n.isCut(id)) {
			if !wait(jitter(500 * time.Millisecond)) {
				return
			}
			continue
		}
		d := websocket.Dialer{TLSClientConfig: n.clientTLS(k), HandshakeTimeout: 10 * time.Second}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, resp, err := d.DialContext(dctx, u+"/fleet/v1/link", nil)
		cancel()
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			n.mu.Lock()
			n.lastErr[u] = err.Error()
			n.mu.Unlock()
			if !failing && ctx.Err() == nil {
				n.log.Warn("fleet: cannot reach peer (retrying with backoff)", "url", u, "err", err)
			}
			failing = true
			if !wait(jitter(backoff)) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		failing = false
		n.mu.Lock()
		delete(n.lastErr, u)
		n.mu.Unlock()
		tc, ok := conn.UnderlyingConn().(*tls.Conn)
		if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
			conn.Close()
			continue
		}
		peer := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
		if _, err := n.learnCert(k, tc.ConnectionState().PeerCertificates[0].Raw); err != nil {
			n.log.Warn("fleet: peer certificate", "url", u, "err", err)
			conn.Close()
			if !wait(jitter(backoff)) {
				return
			}
			continue
		}
		n.mu.Lock()
		n.urlBox[u] = peer
		n.mu.Unlock()
		if n.runLink(ctx, k, newLink(n, peer, k.id.BoxID, conn)) {
			backoff = minBackoff // it worked: the next failure starts afresh
		}
		if !wait(jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// PeerStatus is one box as `fleet status` shows it.
type PeerStatus struct {
	Box       string   `json:"box"`
	URL       string   `json:"url,omitempty"`
	Locations []string `json:"locations,omitempty"`
	// Version is the software version the box last advertised ("" =
	// a box from before versions were advertised).
	Version  string    `json:"version,omitempty"`
	Link     string    `json:"link"` // up, down
	DialedBy string    `json:"dialedBy,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Lag is how many log entries this box holds that the peer has not
	// confirmed.
	Lag       uint64 `json:"lag"`
	LastError string `json:"lastError,omitempty"`
	// BytesIn and BytesOut count message bytes on the current link.
	BytesIn  int64 `json:"bytesIn,omitempty"`
	BytesOut int64 `json:"bytesOut,omitempty"`
}

// Status is the fleet as this box sees it.
type Status struct {
	InFleet       bool              `json:"inFleet"`
	Box           string            `json:"box,omitempty"`
	Fleet         string            `json:"fleet,omitempty"`
	CAFingerprint string            `json:"caFingerprint,omitempty"`
	HoldsCA       bool              `json:"holdsCA,omitempty"`
	Listen        string            `json:"listen,omitempty"`
	Locations     []string          `json:"locations,omitempty"`
	VV            map[string]uint64 `json:"versionVector,omitempty"`
	Peers         []PeerStatus      `json:"peers,omitempty"`
	Removed       []string          `json:"removed,omitempty"`
	// LogEntries and Registers size the replication log after
	// compaction (entries) against the merged state (registers).
	LogEntries int `json:"logEntries,omitempty"`
	Registers  int `json:"registers,omitempty"`
	// Config is what this box did with the fleet's configuration.
	Config *ConfigStatus `json:"config,omitempty"`
}

// Status reports identity, peers, link state and lag.
func (n *Node) Status() (Status, error) {
	k, _ := n.current()
	if k == nil {
		return Status{}, nil
	}
	st := Status{InFleet: true, Box: k.id.BoxID, Fleet: k.id.FleetID, CAFingerprint: Fingerprint(k.ca), HoldsCA: k.caKey != nil, Listen: n.advertise(), Locations: n.opts.Locations}
	var all map[string]BoxValue
	var removed map[string]bool
	err := n.st.View(func(tx *store.Tx) error {
		var err error
		if st.VV, err = readVV(tx); err != nil {
			return err
		}
		if st.LogEntries, err = logEntries(tx); err != nil {
			return err
		}
		if err := tx.ForEachKV(bucketReg, "", func(string, []byte) error { st.Registers++; return nil }); err != nil {
			return err
		}
		all, removed, err = boxes(tx)
		return err
	})
	if err != nil {
		return st, fmt.Errorf("fleet status: %w", err)
	}
	st.Removed = sortedKeys(removed)
	if st.Config, err = n.ConfigStatus(); err != nil {
		return st, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range sortedKeys(all) {
		if id == k.id.BoxID {
			continue
		}
		ps := PeerStatus{Box: id, URL: all[id].URL, Locations: all[id].Locations, Version: all[id].Version, Link: "down", LastError: n.lastErr[all[id].URL]}
		if l := n.links[id]; l != nil && l.up() {
			ps.Link, ps.DialedBy, ps.Since = "up", l.dialer, l.since
			ps.BytesIn, ps.BytesOut = l.bytesIn.Load(), l.bytesOut.Load()
			l.mu.Lock()
			for o, s := range st.VV {
				if s > l.theirVV[o] {
					ps.Lag += s - l.theirVV[o]
				}
			}
			l.mu.Unlock()
		}
		st.Peers = append(st.Peers, ps)
	}
	return st, nil
}

// Relay sends a verified OfficeRnD webhook body to every linked peer (best
// effort: a hint, not replicated; the peers re-read the entity and the
// poll repairs anything missed). It returns how many peers it went to.
func (n *Node) Relay(body []byte) int {
	if len(body) == 0 || len(body) > MaxHintBytes || body[0] != '{' {
		return 0
	}
	n.mu.Lock()
	var ls []*link
	for _, l := range n.links {
		if l.up() {
			ls = append(ls, l)
		}
	}
	n.mu.Unlock()
	sent := 0
	for _, l := range ls {
		if l.send(Message{Type: TypeHint, Hint: body}) {
			sent++
		}
	}
	return sent
}
