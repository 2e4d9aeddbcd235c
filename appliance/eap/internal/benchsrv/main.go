// Command benchsrv runs deskgate's EAP server behind a minimal RADIUS front for appliance/eap/bench.sh:
// certificates are created in -dir on first start, members come from -users ("name:password,...").
package main

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"github.com/deskgate/deskgate/appliance/creds"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"crypto/x509"

	"github.com/deskgate/deskgate/appliance/eap"
	"github.com/deskgate/deskgate/appliance/eap/certs"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/vendors/microsoft"
)

type members struct {
	hashes map[string][]byte
	ca     *certs.Authority
}

func (m members) NTHash(ctx context.Context, identity string) ([]byte, error) {
	if h, ok := m.hashes[identity]; ok {
		return h, nil
	}
	return nil, errors.New("unknown identity")
}

func (m members) CertIdentity(ctx context.Context, cert *x509.Certificate, chains [][]*x509.Certificate) (string, error) {
	return m.ca.VerifiedCertIdentity(cert, chains)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:28812", "RADIUS listen address")
	dir := flag.String("dir", "", "state directory (certificates)")
	name := flag.String("name", "radius.bench.example", "server certificate name")
	secret := flag.String("secret", "testing123", "RADIUS secret")
	users := flag.String("users", "alice:correct horse", "name:password,...")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: default)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until exit")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*addr, *dir, *name, *secret, *users); err != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(addr, dir, name, secret, users string) error {
	ca, err := certs.Open(certs.Config{Dir: dir, ServerName: name})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "trust.pem"), ca.TrustAnchorPEM(), 0o600); err != nil {
		return err
	}
	m := members{hashes: map[string][]byte{}, ca: ca}
	for _, u := range strings.Split(users, ",") {
		n, p, _ := strings.Cut(u, ":")
		m.hashes[n] = creds.NTHash(p)
	}
	cfg := eap.Config{Certificate: ca.ServerCertificate(), ClientCAs: ca.ClientCAs()}
	cfg.SessionTicketKey[0] = 7
	srv, err := eap.New(cfg, m, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	ps := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			var msg []byte
			for _, a := range r.Attributes {
				if a.Type == rfc2869.EAPMessage_Type {
					msg = append(msg, a.Attribute...)
				}
			}
			res := srv.Handle(r.Context(), eap.Request{EAPMessage: msg, State: rfc2865.State_Get(r.Packet),
				FramedMTU: int(rfc2865.FramedMTU_Get(r.Packet)), UserName: rfc2865.UserName_GetString(r.Packet),
				NASKey: r.RemoteAddr.String() + "|" + rfc2865.CallingStationID_GetString(r.Packet)})
			var resp *radius.Packet
			switch res.Action {
			case eap.Challenge:
				resp = r.Response(radius.CodeAccessChallenge)
				rfc2865.State_Set(resp, res.State)
			case eap.Accept:
				resp = r.Response(radius.CodeAccessAccept)
				microsoft.MSMPPERecvKey_Add(resp, res.MSK[:32])
				microsoft.MSMPPESendKey_Add(resp, res.MSK[32:])
			default:
				resp = r.Response(radius.CodeAccessReject)
			}
			for _, c := range eap.SplitEAPMessage(res.EAPMessage) {
				resp.Add(rfc2869.EAPMessage_Type, c)
			}
			rfc2869.MessageAuthenticator_Set(resp, make([]byte, 16))
			b, _ := resp.MarshalBinary()
			h := hmac.New(md5.New, resp.Secret)
			h.Write(b)
			rfc2869.MessageAuthenticator_Set(resp, h.Sum(nil))
			w.Write(resp)
		}),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		ps.Shutdown(context.Background())
	}()
	fmt.Println("ready")
	if err := ps.Serve(pc); err != nil && !errors.Is(err, radius.ErrServerShutdown) {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(os.Stderr, "benchsrv: completed %v resumed %d rejected %d\n", st.Completed, st.Resumed, st.Rejected)
	return nil
}
