package guests

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fakeMembers struct{ until time.Time }

func (f fakeMembers) CheckMember(_ context.Context, email, password, locationID string) (string, string, time.Time, error) {
	switch {
	case email != "ada@member.test" || password != "right":
		return "", "", time.Time{}, ErrBadCredentials
	case locationID != "loc1":
		return "", "", time.Time{}, ErrWrongLocation
	}
	return "m1", "Ada", f.until, nil
}

func TestLoginMember(t *testing.T) {
	e := newEnv(t, t0, Config{MemberSession: 8 * time.Hour})
	e.m = New(e.cfg, e.st, e.net, fakeMembers{until: t0.Add(2 * time.Hour)}, nil, e.clk.Now)
	ctx := context.Background()
	if _, err := e.m.LoginMember(ctx, "ada@member.test", "wrong", client(1), "loc1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := e.m.LoginMember(ctx, "ada@member.test", "right", client(1), "loc2"); !errors.Is(err, ErrWrongLocation) {
		t.Fatalf("wrong location: %v", err)
	}
	s, err := e.m.LoginMember(ctx, "ada@member.test", "right", client(1), "loc1")
	if err != nil {
		t.Fatal(err)
	}
	// The membership ends before the 8 h session would.
	if s.Kind != KindMember || s.MemberID != "m1" || !s.Until.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("session = %+v", s)
	}
	if until, ok := e.net.Until(mac(1)); !ok || !until.Equal(s.Until) {
		t.Fatalf("Allow until %v %v", until, ok)
	}
	e.clk.Set(s.Until)
	e.m.tick(ctx)
	if got := e.net.Revokes(); len(got) != 1 {
		t.Fatalf("member session not ended: %v", got)
	}
	if len(e.audit("guest.member_login")) != 1 {
		t.Errorf("member login not audited")
	}
}

// The types here mirror portal's so the composition root's adapter is a
// field-for-field copy. This reads portal/portal.go (when present) without
// importing it (appliance/* must not import portal).
func TestMirrorsPortal(t *testing.T) {
	src, err := os.ReadFile("../../portal/portal.go")
	if err != nil {
		t.Skip("portal not present:", err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "portal.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	expr := func(x ast.Expr) string {
		var b strings.Builder
		_ = printer.Fprint(&b, fset, x)
		return b.String()
	}
	fields := func(fl *ast.FieldList) []string {
		var out []string
		if fl == nil {
			return out
		}
		for _, fd := range fl.List {
			n := max(len(fd.Names), 1)
			for range n {
				out = append(out, expr(fd.Type))
			}
		}
		return out
	}
	ours := map[string]reflect.Type{"Client": reflect.TypeFor[Client](), "Session": reflect.TypeFor[Session]()}
	typeName := func(t reflect.Type) string {
		return strings.ReplaceAll(t.String(), "guests.", "")
	}
	var errs []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.TypeSpec:
			switch st := x.Type.(type) {
			case *ast.StructType:
				our, ok := ours[x.Name.Name]
				if !ok {
					return true
				}
				var theirs []string
				for _, fd := range st.Fields.List {
					for _, nm := range fd.Names {
						theirs = append(theirs, nm.Name+" "+expr(fd.Type))
					}
				}
				var mine []string
				for i := range our.NumField() {
					mine = append(mine, our.Field(i).Name+" "+typeName(our.Field(i).Type))
				}
				if strings.Join(theirs, ";") != strings.Join(mine, ";") {
					errs = append(errs, x.Name.Name+": portal "+strings.Join(theirs, "; ")+" != guests "+strings.Join(mine, "; "))
				}
			case *ast.InterfaceType:
				if x.Name.Name != "Backend" && x.Name.Name != "Network" {
					return true
				}
				var our reflect.Type
				if x.Name.Name == "Backend" {
					our = reflect.TypeFor[*Manager]()
				} else {
					our = reflect.TypeFor[Network]()
				}
				for _, m := range st.Methods.List {
					ft := m.Type.(*ast.FuncType)
					want := "(" + strings.Join(fields(ft.Params), ", ") + ") (" + strings.Join(fields(ft.Results), ", ") + ")"
					meth, ok := our.MethodByName(m.Names[0].Name)
					if !ok {
						errs = append(errs, "missing method "+m.Names[0].Name)
						continue
					}
					mt := meth.Type
					first := 0
					if x.Name.Name == "Backend" {
						first = 1 // receiver
					}
					var in, out []string
					for i := first; i < mt.NumIn(); i++ {
						in = append(in, typeName(mt.In(i)))
					}
					for i := range mt.NumOut() {
						out = append(out, typeName(mt.Out(i)))
					}
					if got := "(" + strings.Join(in, ", ") + ") (" + strings.Join(out, ", ") + ")"; got != want {
						errs = append(errs, m.Names[0].Name+": portal "+want+" != guests "+got)
					}
				}
			}
		case *ast.ValueSpec:
			for _, nm := range x.Names {
				if strings.HasPrefix(nm.Name, "Err") && !isRefusal(errByName(nm.Name)) {
					errs = append(errs, "no guests."+nm.Name)
				}
				if strings.HasPrefix(nm.Name, "Kind") {
					errs = append(errs, checkKind(nm.Name, x)...)
				}
			}
		}
		return true
	})
	for _, e := range errs {
		t.Error(e)
	}
}

func errByName(name string) error {
	return map[string]error{
		"ErrBadCode": ErrBadCode, "ErrNotYetValid": ErrNotYetValid, "ErrExpired": ErrExpired,
		"ErrWrongLocation": ErrWrongLocation, "ErrDeviceLimit": ErrDeviceLimit,
		"ErrBadCredentials": ErrBadCredentials, "ErrNoWiFi": ErrNoWiFi,
	}[name]
}

func checkKind(name string, v *ast.ValueSpec) []string {
	ours := map[string]string{"KindGuest": KindGuest, "KindDayPass": KindDayPass, "KindMember": KindMember}
	for i, nm := range v.Names {
		if nm.Name != name || i >= len(v.Values) {
			continue
		}
		lit, ok := v.Values[i].(*ast.BasicLit)
		if !ok || strings.Trim(lit.Value, `"`) != ours[name] {
			return []string{"kind " + name + " differs"}
		}
	}
	return nil
}
