//go:build !(linux && (amd64 || arm64))

package radius

import (
	"context"
	"net"
	"sync"
)

// listenAuth binds an authentication socket through the net package.
func listenAuth(ctx context.Context, addr string) (authSocket, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c, nil
}

// serveAuth serves one authentication socket with Workers readers, one
// datagram at a time, until it is closed.
func (s *Server) serveAuth(ctx context.Context, c authSocket) {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.readLoop(ctx, c.(*net.UDPConn), false) })
	}
	wg.Wait()
}

func newUDPIO(c *net.UDPConn) udpIO { return netIO{c} }
