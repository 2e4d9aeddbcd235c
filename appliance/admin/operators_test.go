package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type opCall struct{ op, name, role, hash string }

// fakeOperators records the changes the routes hand it.
type fakeOperators struct {
	calls []opCall
	fail  error
}

func (f *fakeOperators) Operators() ([]OperatorView, error) {
	return []OperatorView{{Name: "alice", Role: "admin", CreatedAt: time.Unix(0, 0).UTC()}}, nil
}

func (f *fakeOperators) ChangeOperator(op, name, role, hash string) error {
	f.calls = append(f.calls, opCall{op, name, role, hash})
	return f.fail
}

// TestOperatorRoutes: /v1/operators lists over TCP; changes are taken only
// over the unix socket; bad input (name, role, short password, unknown
// field types) is refused with a clear error before the store sees it; the
// password reaches the store only hashed; a store refusal answers with its
// status.
func TestOperatorRoutes(t *testing.T) {
	dir := t.TempDir()
	ops := &fakeOperators{}
	s, err := NewServer(Options{Backend: noBackend{}, TokenFile: filepath.Join(dir, TokenFile), Operators: ops})
	if err != nil {
		t.Fatal(err)
	}
	tcp, sock, err := s.Listen("127.0.0.1:0", filepath.Join(dir, "admin.sock"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range []interface {
		Close() error
	}{tcp, sock} {
		defer ln.Close()
	}
	tsrv, ssrv := s.HTTPServer(), s.HTTPServer()
	go tsrv.Serve(tcp)
	go ssrv.Serve(sock)
	defer tsrv.Shutdown(context.Background())
	defer ssrv.Shutdown(context.Background())
	tok, err := LoadOrCreateToken(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tc := Dial(s.Addr("127.0.0.1:0")).WithToken(tok)
	sc := Dial(filepath.Join(dir, "admin.sock"))

	var list []OperatorView
	if err := tc.Get(ctx, "/v1/operators", nil, &list); err != nil || len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("list over TCP: %v %+v", err, list)
	}
	const pw = "correct horse battery"
	add := OperatorRequest{Name: "frontdesk", Role: "operator", Password: pw}
	if err := tc.PostJSON(ctx, "/v1/operators", add, nil); err == nil || !strings.Contains(err.Error(), "unix socket") {
		t.Fatalf("add over TCP: %v, want a refusal", err)
	}
	for want, bad := range map[string]OperatorRequest{
		"2-32 characters": {Name: "Front Desk", Role: "operator", Password: pw},
		`role "root"`:     {Name: "frontdesk", Role: "root", Password: pw},
		"password":        {Name: "frontdesk", Role: "operator", Password: "short"},
	} {
		if err := sc.PostJSON(ctx, "/v1/operators", bad, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want an error saying %q", bad, err, want)
		}
	}
	if err := sc.PostJSON(ctx, "/v1/operators/passwd", OperatorRequest{Name: "frontdesk", Role: "root", Password: pw}, nil); err == nil || !strings.Contains(err.Error(), `role "root"`) {
		t.Errorf("passwd with a bad role: %v", err)
	}
	if len(ops.calls) != 0 {
		t.Fatalf("bad input reached the store: %+v", ops.calls)
	}

	if err := sc.PostJSON(ctx, "/v1/operators", add, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.PostJSON(ctx, "/v1/operators/passwd", OperatorRequest{Name: "frontdesk", Password: pw + "!"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.PostJSON(ctx, "/v1/operators/remove", OperatorRequest{Name: "frontdesk"}, nil); err != nil {
		t.Fatal(err)
	}
	if len(ops.calls) != 3 {
		t.Fatalf("calls %+v, want add, passwd, remove", ops.calls)
	}
	for i, want := range []opCall{{op: OperatorAdd, role: "operator"}, {op: OperatorPasswd}, {op: OperatorRemove}} {
		c := ops.calls[i]
		if c.op != want.op || c.name != "frontdesk" || c.role != want.role {
			t.Errorf("call %d: %+v, want %+v", i, c, want)
		}
		if hashed := strings.HasPrefix(c.hash, "$argon2id$") && !strings.Contains(c.hash, pw); hashed != (want.op != OperatorRemove) {
			t.Errorf("call %d hash %q", i, c.hash)
		}
	}

	ops.fail = Errorf(http.StatusConflict, "operator frontdesk exists")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(dir, "admin.sock"))
	}}}
	resp, err := hc.Post("http://localhost/v1/operators", "application/json", strings.NewReader(`{"name":"frontdesk","role":"admin","password":"`+pw+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "exists") {
		t.Fatalf("store refusal: %d %s, want 409 and its message", resp.StatusCode, body)
	}
}
