//go:build !(linux && (amd64 || arm64))

package radius

import (
	"net"
	"net/netip"
)

// batchAuthLoop is unavailable here: the caller reads one datagram at a
// time.
func (s *Server) batchAuthLoop(ctx interface{ Err() error }, c *net.UDPConn, handle func(w *worker, b []byte, src netip.AddrPort) []byte) bool {
	return false
}
