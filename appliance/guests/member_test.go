package guests

import (
	"context"
	"errors"
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
