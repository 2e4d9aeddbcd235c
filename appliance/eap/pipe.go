package eap

import (
	"context"
	"errors"
	"net"
	"sync"
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

// engine runs one TLS-based method in its own goroutine, fed one reassembled EAP-TLS message at a time.
// The goroutine only runs while Handle waits for it, so exactly one side is active at any moment:
// Handle sends the peer's bytes on in, and the engine answers with one step on steps.
type engine struct {
	in     chan []byte
	steps  chan step
	closed chan struct{}
	once   sync.Once
	ctx    context.Context // ctx of the Handle call currently waiting; set before each send on in

	inbuf  []byte // unread peer bytes (engine side)
	outbuf []byte // bytes written by TLS, not yet handed to Handle
	pipe   *pipeConn
}

func newEngine() *engine {
	e := &engine{in: make(chan []byte), steps: make(chan step), closed: make(chan struct{})}
	e.pipe = &pipeConn{e: e}
	return e
}

// start launches run with the peer's first message.
func (e *engine) start(ctx context.Context, first []byte, run func(e *engine) outcome) {
	e.ctx = ctx
	e.inbuf = append(e.inbuf[:0], first...)
	go func() {
		res := run(e)
		select {
		case e.steps <- step{done: true, res: res}:
		case <-e.closed:
		}
	}()
}

// feed gives the engine the peer's next message (possibly empty: an acknowledgement).
func (e *engine) feed(ctx context.Context, msg []byte) error {
	e.ctx = ctx
	select {
	case e.in <- msg:
		return nil
	case <-e.closed:
		return errEngineClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns the engine's next step.
func (e *engine) wait(ctx context.Context) (step, error) {
	select {
	case s := <-e.steps:
		return s, nil
	case <-e.closed:
		return step{}, errEngineClosed
	case <-ctx.Done():
		return step{}, ctx.Err()
	}
}

// close stops the engine goroutine; safe to call more than once.
func (e *engine) close() { e.once.Do(func() { close(e.closed) }) }

// exchange (engine side) hands the pending output to Handle and blocks until the peer's next message,
// returning how many bytes it added.
func (e *engine) exchange() (int, error) {
	out := e.outbuf
	e.outbuf = nil
	select {
	case e.steps <- step{out: out}:
	case <-e.closed:
		return 0, errEngineClosed
	}
	select {
	case msg := <-e.in:
		e.inbuf = append(e.inbuf, msg...)
		return len(msg), nil
	case <-e.closed:
		return 0, errEngineClosed
	}
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
	select {
	case <-c.e.closed:
		return 0, errEngineClosed
	default:
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
