package eap

import (
	"context"
	"errors"
	"iter"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errEngineClosed is returned to the TLS engine when its conversation is abandoned or evicted.
var errEngineClosed = errors.New("eap: conversation closed")

// step is what the engine hands back to Handle after consuming a peer message: the TLS bytes to send
// (fragmented by the caller), and when the method has finished, its outcome.
type step struct {
	out  []byte
	done bool
	res  outcome
}

// outcome is the end of a TLS-based method.
type outcome struct {
	ok          bool
	identity    string
	method      string
	msk         []byte
	reason      string
	resumed     bool
	unsupported bool // the peer wants only methods that cannot be verified from the NT hash
}

// engine runs one TLS-based method as a coroutine (iter.Pull), fed one reassembled EAP-TLS message at a
// time. crypto/tls blocks in Read for the peer's next flight; here that Read suspends the coroutine and
// hands control straight back to Handle, which resumes it with the next message. A coroutine switch is a
// direct hand-off on the caller's thread: unlike a goroutine woken through channels (two scheduler
// wake-ups per EAP round trip, each waking an idle thread that spins and sleeps again), nothing else is
// woken. Calls are serialised by the conversation's mutex.
type engine struct {
	next   func() (step, bool)
	stop   func()
	yield  func(step) bool // engine side: suspends until the next resume
	closed atomic.Bool
	done   atomic.Bool     // run has returned (the coroutine is gone)
	final  outcome         // run's result, once done
	ctx    context.Context // ctx of the Handle call currently resuming the engine

	pending []byte // the peer's message handed over by feed, taken by exchange
	inbuf   []byte // unread peer bytes (engine side)
	outbuf  []byte // bytes written by TLS, not yet handed to Handle
	pipe    *pipeConn
}

func newEngine() *engine {
	e := &engine{}
	e.pipe = &pipeConn{e: e}
	return e
}

// start prepares run with the peer's first message; wait runs it.
func (e *engine) start(ctx context.Context, first []byte, run func(e *engine) outcome) {
	e.ctx = ctx
	e.inbuf = append(e.inbuf[:0], first...)
	e.next, e.stop = iter.Pull(func(yield func(step) bool) {
		defer e.done.Store(true)
		growStack()
		e.yield = yield
		e.final = run(e)
	})
}

// feed gives the engine the peer's next message (possibly empty: an acknowledgement).
func (e *engine) feed(ctx context.Context, msg []byte) error {
	if e.closed.Load() || e.done.Load() {
		return errEngineClosed
	}
	e.ctx = ctx
	e.pending = msg
	return nil
}

// wait resumes the engine until its next step.
func (e *engine) wait(ctx context.Context) (step, error) {
	if e.closed.Load() {
		return step{}, errEngineClosed
	}
	if err := ctx.Err(); err != nil {
		return step{}, err
	}
	if st, ok := e.next(); ok {
		return st, nil
	}
	return step{done: true, res: e.final}, nil
}

// close stops the engine; safe to call more than once, from any goroutine. A suspended coroutine is
// unwound (its pending Read fails) under the conversation's lock, which whoever resumes it holds, so
// stop never runs beside next.
func (e *engine) close(lock sync.Locker) {
	if e.closed.Swap(true) || e.next == nil || e.done.Load() {
		return
	}
	go func() {
		lock.Lock()
		defer lock.Unlock()
		e.stop()
	}()
}

// exchange (engine side) hands the pending output to Handle and suspends until the peer's next message,
// returning how many bytes it added.
func (e *engine) exchange() (int, error) {
	out := e.outbuf
	e.outbuf = nil
	if e.closed.Load() || !e.yield(step{out: out}) {
		return 0, errEngineClosed
	}
	msg := e.pending
	e.pending = nil
	e.inbuf = append(e.inbuf, msg...)
	return len(msg), nil
}

// pipeConn is the net.Conn crypto/tls runs over. Read returns at most one TLS record per call, so records
// the TLS stack has not asked for yet stay visible in inbuf (used to see whether a peer sent
// application data together with its Finished).
type pipeConn struct{ e *engine }

func (c *pipeConn) Read(b []byte) (int, error) {
	e := c.e
	for len(e.inbuf) == 0 {
		if _, err := e.exchange(); err != nil {
			return 0, err
		}
	}
	n := len(e.inbuf)
	if n >= 5 {
		if rl := 5 + (int(e.inbuf[3])<<8 | int(e.inbuf[4])); rl < n {
			n = rl
		}
	}
	n = copy(b, e.inbuf[:n])
	e.inbuf = e.inbuf[n:]
	if len(e.inbuf) == 0 {
		e.inbuf = nil
	}
	return n, nil
}

func (c *pipeConn) Write(b []byte) (int, error) {
	if c.e.closed.Load() {
		return 0, errEngineClosed
	}
	c.e.outbuf = append(c.e.outbuf, b...)
	return len(b), nil
}

func (c *pipeConn) Close() error                       { return nil }
func (c *pipeConn) LocalAddr() net.Addr                { return eapAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr               { return eapAddr{} }
func (c *pipeConn) SetDeadline(t time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return nil }

type eapAddr struct{}

func (eapAddr) Network() string { return "eap" }
func (eapAddr) String() string  { return "eap" }

// engineStack is about the stack a TLS handshake needs on the engine's coroutine (certificate
// verification for EAP-TLS is the deepest). A new goroutine's stack starts small and doubles each time
// it runs out, copying the frames on it every time, deep inside the handshake; growStack makes it grow
// once, at the start, while there is almost nothing to copy.
const engineStack = 16 << 10

//go:noinline
func growStack() {
	var b [engineStack]byte
	touchStack(b[:])
}

//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 0 }
