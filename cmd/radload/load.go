package main

import (
	"context"
	"crypto/des"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"flag"
	"fmt"
	"hash"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	//lint:ignore SA1019 MS-CHAPv2 is defined on MD4 (RFC 2759)
	"golang.org/x/crypto/md4"
	"golang.org/x/sys/unix"
)

// loadConfig is one load run.
type loadConfig struct {
	Mode     string // pap | mschap | acct
	Target   string
	Secret   []byte
	Users    int
	Sockets  int
	IDs      int
	Warmup   time.Duration
	Duration time.Duration
	Rate     float64 // requests/s; 0 = saturate
	PID      int     // server process for CPU accounting
	Label    string
}

// result is one run's figures.
type result struct {
	Label, Mode       string
	Rate              float64 // target rate, 0 = saturation
	OK, Errors, Lost  int
	Elapsed           time.Duration
	CPU               time.Duration // server utime+stime in the window
	P50, P99, P999    time.Duration
	LateP99           time.Duration // rate mode: generator's own scheduling lateness
	ReqPerSec         float64
	CPUPerReq         time.Duration
	ReqPerCPUSecond   float64
	ServerCPUFraction float64
}

func (r result) String() string {
	load := "saturation"
	if r.Rate > 0 {
		load = fmt.Sprintf("rate=%.0f", r.Rate)
	}
	extra := ""
	if r.Rate > 0 {
		extra = fmt.Sprintf(" generator-lateness-p99=%.1fµs", us(r.LateP99))
	}
	return fmt.Sprintf("%-10s %-6s %-15s req/s=%8.0f ok=%7d err=%d lost=%d cpu/req=%6.1fµs req/cpu-s=%8.0f p50=%7.1fµs p99=%8.1fµs p99.9=%8.1fµs server-cpu=%.2f cores",
		r.Label, r.Mode, load, r.ReqPerSec, r.OK, r.Errors, r.Lost, us(r.CPUPerReq), r.ReqPerCPUSecond, us(r.P50), us(r.P99), us(r.P999), r.ServerCPUFraction) + extra
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func loadFlags(fs *flag.FlagSet, c *loadConfig) *string {
	fs.StringVar(&c.Mode, "mode", "pap", "pap | mschap | acct")
	fs.StringVar(&c.Target, "target", "127.0.0.1:21812", "server address")
	secret := fs.String("secret", "bench-secret", "shared secret")
	fs.IntVar(&c.Users, "users", 10000, "accounts user00000…")
	fs.IntVar(&c.Sockets, "sockets", 4, "UDP sockets (source ports)")
	fs.IntVar(&c.IDs, "ids", 256, "outstanding identifiers per socket")
	fs.DurationVar(&c.Warmup, "warmup", 500*time.Millisecond, "warm-up before measuring")
	fs.DurationVar(&c.Duration, "duration", 3*time.Second, "measurement window")
	fs.Float64Var(&c.Rate, "rate", 0, "requests per second (0: saturate)")
	fs.IntVar(&c.PID, "pid", 0, "server pid for CPU accounting")
	fs.StringVar(&c.Label, "label", "server", "label in the output")
	return secret
}

func loadCmd(ctx context.Context, args []string) (result, error) {
	var c loadConfig
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	secret := loadFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return result{}, err
	}
	c.Secret = []byte(*secret)
	return runLoad(ctx, c)
}

// procCPU returns utime+stime of pid.
func procCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu of %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	// Fields after the command: state(0) ... utime(11) stime(12), in clock ticks (100 Hz).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

type slot struct {
	sent  time.Time
	auth  [16]byte
	busy  bool
	sessN int // accounting: Start, Interim, Stop, next session
}

// sock is one client socket with its 256 identifiers, like one NAS.
type sock struct {
	conn  *net.UDPConn
	mu    sync.Mutex // rate mode only: sender and receiver share slots
	slots []slot
	free  chan byte
	lat   []time.Duration
	late  []time.Duration // rate mode: how late each send was against its schedule
	ok    int
	errs  int
	lost  int
	rng   *rand.Rand
	buf   []byte
	index int
	h     *hasher
	names [][]byte
	pws   [][]byte
	macs  [256][]byte
}

// hasher keeps reusable MD5 state so the generator stays cheap.
type hasher struct {
	md5          hash.Hash
	inner, outer hash.Hash
	ipad, opad   [64]byte
	sum          [16]byte
}

func newHasher(secret []byte) *hasher {
	h := &hasher{md5: md5.New(), inner: md5.New(), outer: md5.New()}
	var k [64]byte
	copy(k[:], secret)
	for i := range k {
		h.ipad[i] = k[i] ^ 0x36
		h.opad[i] = k[i] ^ 0x5c
	}
	return h
}

func (h *hasher) hmac(b []byte) []byte {
	h.inner.Reset()
	h.inner.Write(h.ipad[:])
	h.inner.Write(b)
	in := h.inner.Sum(h.sum[:0])
	h.outer.Reset()
	h.outer.Write(h.opad[:])
	h.outer.Write(in)
	return h.outer.Sum(h.sum[:0])
}

func runLoad(ctx context.Context, c loadConfig) (result, error) {
	raddr, err := net.ResolveUDPAddr("udp", c.Target)
	if err != nil {
		return result{}, fmt.Errorf("load: %w", err)
	}
	ntHashes := make([][16]byte, c.Users)
	names := make([][]byte, c.Users)
	pws := make([][]byte, c.Users)
	for i := range ntHashes {
		ntHashes[i] = ntHash(password(i))
		names[i] = []byte(userName(i))
		pws[i] = []byte(password(i))
	}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		counter   atomic.Int64
	)
	socks := make([]*sock, c.Sockets)
	for i := range socks {
		conn, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return result{}, fmt.Errorf("load: %w", err)
		}
		defer conn.Close()
		_ = conn.SetReadBuffer(4 << 20)
		_ = conn.SetWriteBuffer(4 << 20)
		s := &sock{conn: conn, slots: make([]slot, 256), free: make(chan byte, 256),
			rng: rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano()))), buf: make([]byte, 0, 512),
			index: i, h: newHasher(c.Secret), names: names, pws: pws}
		for id := range 256 {
			s.macs[id] = fmt.Appendf(nil, "02-00-00-%02X-%02X-00", i, id)
		}
		for id := range c.IDs {
			s.free <- byte(id)
		}
		socks[i] = s
	}
	if c.Rate > 0 {
		// One pacing goroutine for all sockets (round robin) keeps the
		// generator's own wake-ups, and so its jitter, low.
		wg.Go(func() { sender(ctx, socks, c, &stop, &counter, ntHashes) })
	}
	for _, s := range socks {
		if c.Rate > 0 {
			wg.Go(func() { receiver(s, c, &measuring, &stop) })
		} else {
			wg.Go(func() { closedLoop(ctx, s, c, &measuring, &stop, &counter, ntHashes) })
		}
	}
	select {
	case <-time.After(c.Warmup):
	case <-ctx.Done():
	}
	cpu0, err := procCPU(c.PID)
	if err != nil {
		stop.Store(true)
		return result{}, err
	}
	t0 := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(c.Duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1, err := procCPU(c.PID)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		return result{}, err
	}
	r := result{Label: c.Label, Mode: c.Mode, Rate: c.Rate, Elapsed: elapsed, CPU: cpu1 - cpu0}
	var lat, late []time.Duration
	for _, s := range socks {
		s.mu.Lock()
		late = append(late, s.late...)
		r.OK += s.ok
		r.Errors += s.errs
		r.Lost += s.lost
		lat = append(lat, s.lat...)
		s.mu.Unlock()
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[len(lat)*99/100]
		r.P999 = lat[len(lat)*999/1000]
	}
	if len(late) > 0 {
		slices.Sort(late)
		r.LateP99 = late[len(late)*99/100]
	}
	r.ReqPerSec = float64(r.OK) / elapsed.Seconds()
	if r.OK > 0 && r.CPU > 0 {
		r.CPUPerReq = r.CPU / time.Duration(r.OK)
		r.ReqPerCPUSecond = float64(r.OK) / r.CPU.Seconds()
	}
	r.ServerCPUFraction = r.CPU.Seconds() / elapsed.Seconds()
	return r, nil
}

// closedLoop keeps every identifier busy: each answer immediately frees
// its identifier for the next request (saturation), in one goroutine per
// socket so the generator spends little CPU.
func closedLoop(ctx context.Context, s *sock, c loadConfig, measuring, stop *atomic.Bool, counter *atomic.Int64, nt [][16]byte) {
	send := func(id byte) {
		sl := &s.slots[id]
		pkt := build(s, c, id, int(counter.Add(1)), sl, nt)
		sl.busy = true
		sl.sent = time.Now()
		_, _ = s.conn.Write(pkt)
	}
	for id := range c.IDs {
		send(byte(id))
	}
	buf := make([]byte, 4096)
	want := wantCode(c)
	lastReap := time.Now()
	for !stop.Load() && ctx.Err() == nil {
		_ = s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := s.conn.Read(buf)
		now := time.Now()
		if err == nil && n >= 20 {
			id := buf[1]
			sl := &s.slots[id]
			if sl.busy && validResponse(buf[:n], sl.auth[:], c.Secret, s.h) {
				sl.busy = false
				if measuring.Load() {
					if buf[0] == want {
						s.ok++
						s.lat = append(s.lat, now.Sub(sl.sent))
					} else {
						s.errs++
					}
				}
				send(id)
			}
		}
		if now.Sub(lastReap) > 100*time.Millisecond {
			lastReap = now
			for i := range c.IDs {
				if sl := &s.slots[i]; sl.busy && now.Sub(sl.sent) > time.Second {
					if measuring.Load() {
						s.lost++
					}
					send(byte(i))
				}
			}
		}
	}
}

func wantCode(c loadConfig) byte {
	if c.Mode == "acct" {
		return 5 // Accounting-Response
	}
	return 2 // Access-Accept
}

// sender sends on schedule (rate mode), round robin over the sockets,
// using each socket's free identifiers.
func sender(ctx context.Context, socks []*sock, c loadConfig, stop *atomic.Bool, counter *atomic.Int64, nt [][16]byte) {
	// Pace on a dedicated thread sleeping in the kernel with minimal timer
	// slack: Go timers on a busy VM wake a millisecond or more late, which
	// turns a schedule into bursts.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	start := time.Now()
	sent := 0
	for !stop.Load() && ctx.Err() == nil {
		s := socks[sent%len(socks)]
		var id byte
		select {
		case id = <-s.free:
		case <-time.After(10 * time.Millisecond):
			continue // all of this socket's ids are out: wait, and count the delay as lateness
		}
		due := start.Add(time.Duration(float64(sent) / c.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			ts := unix.NsecToTimespec(int64(d))
			_ = unix.Nanosleep(&ts, nil)
		}
		sent++
		late := time.Since(due)
		s.mu.Lock()
		s.late = append(s.late, late)
		sl := &s.slots[id]
		pkt := build(s, c, id, int(counter.Add(1)), sl, nt)
		sl.busy = true
		sl.sent = time.Now()
		_, _ = s.conn.Write(pkt)
		s.mu.Unlock()
	}
}

// receiver matches answers to slots (rate mode) and reaps lost requests.
func receiver(s *sock, c loadConfig, measuring, stop *atomic.Bool) {
	buf := make([]byte, 4096)
	want := wantCode(c)
	h := newHasher(c.Secret)
	lastReap := time.Now()
	for !stop.Load() {
		_ = s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := s.conn.Read(buf)
		now := time.Now()
		var freed []byte
		s.mu.Lock()
		if err == nil && n >= 20 {
			id := buf[1]
			sl := &s.slots[id]
			if sl.busy && validResponse(buf[:n], sl.auth[:], c.Secret, h) {
				sl.busy = false
				if measuring.Load() {
					if buf[0] == want {
						s.ok++
						s.lat = append(s.lat, now.Sub(sl.sent))
					} else {
						s.errs++
					}
				}
				freed = append(freed, id)
			}
		}
		if now.Sub(lastReap) > 100*time.Millisecond {
			lastReap = now
			for i := range s.slots {
				if sl := &s.slots[i]; sl.busy && now.Sub(sl.sent) > time.Second {
					sl.busy = false
					if measuring.Load() {
						s.lost++
					}
					freed = append(freed, byte(i))
				}
			}
		}
		s.mu.Unlock()
		for _, id := range freed {
			s.free <- id
		}
	}
}

func validResponse(b, reqAuth, secret []byte, h *hasher) bool {
	l := int(binary.BigEndian.Uint16(b[2:4]))
	if l > len(b) || l < 20 {
		return false
	}
	h.md5.Reset()
	h.md5.Write(b[:4])
	h.md5.Write(reqAuth)
	h.md5.Write(b[20:l])
	h.md5.Write(secret)
	return string(h.md5.Sum(h.sum[:0])) == string(b[4:20])
}

func ntHash(pw string) [16]byte {
	u := make([]byte, 0, 2*len(pw))
	for _, r := range pw {
		u = append(u, byte(r), byte(r>>8))
	}
	h := md4.New()
	h.Write(u)
	return [16]byte(h.Sum(nil))
}

func appendAttr(b []byte, t byte, v []byte) []byte {
	b = append(b, t, byte(len(v)+2))
	return append(b, v...)
}

func appendVSA(b []byte, vendor uint32, t byte, v []byte) []byte {
	b = append(b, 26, byte(len(v)+8))
	b = binary.BigEndian.AppendUint32(b, vendor)
	b = append(b, t, byte(len(v)+2))
	return append(b, v...)
}

// build makes a fresh request for the slot: a new random authenticator
// every time, so no server can answer from its duplicate cache.
func build(s *sock, c loadConfig, id byte, n int, sl *slot, nt [][16]byte) []byte {
	user := n % c.Users
	name := s.names[user]
	b := s.buf[:0]
	for i := range 16 {
		sl.auth[i] = byte(s.rng.Uint32())
	}
	switch c.Mode {
	case "acct":
		b = append(b, 4, id, 0, 0)
		b = append(b, make([]byte, 16)...)
		var status uint32
		switch sl.sessN % 3 {
		case 0:
			status = 1 // Start
		case 1:
			status = 3 // Interim-Update
		case 2:
			status = 2 // Stop
		}
		sess := fmt.Sprintf("%d-%d-%d", s.index, id, sl.sessN/3)
		sl.sessN++
		b = appendAttr(b, 1, name)
		b = appendAttr(b, 40, binary.BigEndian.AppendUint32(nil, status))
		b = appendAttr(b, 44, []byte(sess))
		b = appendAttr(b, 31, s.macs[id])
		b = appendAttr(b, 8, []byte{10, 1, byte(s.index), id})
		if status != 1 {
			b = appendAttr(b, 42, binary.BigEndian.AppendUint32(nil, uint32(n)))
			b = appendAttr(b, 43, binary.BigEndian.AppendUint32(nil, uint32(2*n)))
			b = appendAttr(b, 46, binary.BigEndian.AppendUint32(nil, 300))
		}
		binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
		s.h.md5.Reset()
		s.h.md5.Write(b)
		s.h.md5.Write(c.Secret)
		copy(b[4:20], s.h.md5.Sum(s.h.sum[:0]))
		copy(sl.auth[:], b[4:20])
		s.buf = b
		return b
	case "mschap":
		b = append(b, 1, id, 0, 0)
		b = append(b, sl.auth[:]...)
		b = appendAttr(b, 80, make([]byte, 16))
		b = appendAttr(b, 1, name)
		var authChal, peerChal [16]byte
		for i := range 16 {
			authChal[i] = byte(s.rng.Uint32())
			peerChal[i] = byte(s.rng.Uint32())
		}
		b = appendVSA(b, 311, 11, authChal[:])
		resp := make([]byte, 50)
		resp[0] = id
		copy(resp[2:18], peerChal[:])
		copy(resp[26:], ntResponse(authChal[:], peerChal[:], name, nt[user][:]))
		b = appendVSA(b, 311, 25, resp)
	default: // pap
		b = append(b, 1, id, 0, 0)
		b = append(b, sl.auth[:]...)
		b = appendAttr(b, 80, make([]byte, 16))
		b = appendAttr(b, 1, name)
		b = appendAttr(b, 2, papEncrypt(s.h, s.pws[user], c.Secret, sl.auth[:]))
	}
	b = appendAttr(b, 4, []byte{127, 0, 0, 1})
	b = appendAttr(b, 31, s.macs[id])
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	copy(b[22:38], s.h.hmac(b))
	s.buf = b
	return b
}

func papEncrypt(h *hasher, pw, secret, auth []byte) []byte {
	l := (len(pw) + 15) / 16 * 16
	if l == 0 {
		l = 16
	}
	var pb [128]byte
	p := pb[:l]
	copy(p, pw)
	prev := auth
	for i := 0; i < l; i += 16 {
		h.md5.Reset()
		h.md5.Write(secret)
		h.md5.Write(prev)
		x := h.md5.Sum(h.sum[:0])
		for j := range 16 {
			p[i+j] ^= x[j]
		}
		prev = p[i : i+16]
	}
	return p
}

func ntResponse(authChal, peerChal, user, nt []byte) []byte {
	h := sha1.New()
	h.Write(peerChal)
	h.Write(authChal)
	h.Write(user)
	ch := h.Sum(nil)[:8]
	z := make([]byte, 21)
	copy(z, nt)
	out := make([]byte, 24)
	for i := range 3 {
		k := z[i*7 : i*7+7]
		key := []byte{k[0], k[0]<<7 | k[1]>>1, k[1]<<6 | k[2]>>2, k[2]<<5 | k[3]>>3, k[3]<<4 | k[4]>>4, k[4]<<3 | k[5]>>5, k[5]<<2 | k[6]>>6, k[6] << 1}
		blk, _ := des.NewCipher(key)
		blk.Encrypt(out[i*8:], ch)
	}
	return out
}
