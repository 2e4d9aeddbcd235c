package creds

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/model"
)

func TestNTHashKnownVector(t *testing.T) {
	// RFC 2759 §9.2: password "clientPass" → NT hash 44EBBA8D5312B8D611474411F56989AE.
	got := hex.EncodeToString(NTHash("clientPass"))
	if got != "44ebba8d5312b8d611474411f56989ae" {
		t.Fatalf("NTHash(clientPass) = %s", got)
	}
	if !VerifyPassword(NTHash("clientPass"), "clientPass") || VerifyPassword(NTHash("clientPass"), "clientpass") {
		t.Fatal("VerifyPassword disagrees with NTHash")
	}
	if VerifyPassword(nil, "") {
		t.Fatal("empty hash must never verify")
	}
}

func TestGeneratePassword(t *testing.T) {
	if _, err := GeneratePassword(MinGeneratedLength - 1); err == nil {
		t.Fatal("short password accepted")
	}
	if EntropyBits(MinGeneratedLength) < 64 {
		t.Fatalf("min length %d gives %.1f bits", MinGeneratedLength, EntropyBits(MinGeneratedLength))
	}
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		p, err := GeneratePassword(14)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("duplicate password %q", p)
		}
		seen[p] = true
		for _, r := range strings.ReplaceAll(p, "-", "") {
			if !strings.ContainsRune(Alphabet, r) {
				t.Fatalf("password %q has %q outside the alphabet", p, r)
			}
		}
		if strings.ContainsAny(p, "0o1li") {
			t.Fatalf("password %q has a look-alike character", p)
		}
	}
}

func TestUsername(t *testing.T) {
	m := model.Member{ID: "603dfbc260f4054084125d30", Name: "José Núñez García", Email: "Jose.Nunez@Example.com"}
	cases := map[string]string{
		"email":            "jose.nunez@example.com",
		"":                 "jose.nunez@example.com",
		"member_id":        "603dfbc260f4054084125d30",
		"{first}.{last}":   "jose.garcia",
		"{email_local}":    "jose.nunez",
		"guest-{id}":       "guest-603dfbc260f4054084125d30",
		"{first} {last}!!": "josegarcia",
	}
	for format, want := range cases {
		if got := Username(format, m); got != want {
			t.Errorf("Username(%q) = %q, want %q", format, got, want)
		}
	}
	if got := Username("email", model.Member{ID: "x"}); got != "" {
		t.Errorf("member without email got %q", got)
	}
}

func TestWithSuffixDeterministic(t *testing.T) {
	a := WithSuffix("ada@example.com", "603dfbc260f4054084125d30", 1)
	if a != "ada+5d30@example.com" {
		t.Fatalf("got %q", a)
	}
	if WithSuffix("ada.l", "603dfbc260f4054084125d30", 2) != "ada.l-25d30" {
		t.Fatal("attempt 2 should lengthen the suffix")
	}
	if WithSuffix("x", "ab", 5) != "x-ab" {
		t.Fatal("suffix must not exceed the id")
	}
}

func TestCheckStrength(t *testing.T) {
	bad := map[string]string{
		"short1":                 "at least 10",
		"alllowercaseonly":       "", // 16 chars single class is fine
		"onlyletters":            "mix",
		"Password123!":           "common",
		"ada.lovelace-Rocks9":    "username",
		strings.Repeat("a", 200): "at most",
	}
	for pw, want := range bad {
		err := CheckStrength(pw, "ada.lovelace@example.com")
		if want == "" {
			if err != nil {
				t.Errorf("%q rejected: %v", pw, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want mention of %q", pw, err, want)
		}
	}
	if err := CheckStrength("Blue-Harbour-42", "ada@example.com"); err != nil {
		t.Errorf("good password rejected: %v", err)
	}
}

func TestToken(t *testing.T) {
	tok, h, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) < 40 || string(HashToken(tok)) != string(h) {
		t.Fatalf("token %q / hash mismatch", tok)
	}
}

func TestDerivePassword(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	a, err := DerivePassword(key, "m1", 0, 16)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := DerivePassword(key, "m1", 0, 16)
	if a != again {
		t.Errorf("not deterministic: %q vs %q", a, again)
	}
	if len(strings.ReplaceAll(a, "-", "")) != 16 || strings.Count(a, "-") != 3 {
		t.Errorf("shape of %q", a)
	}
	for _, c := range strings.ReplaceAll(a, "-", "") {
		if !strings.ContainsRune(Alphabet, c) {
			t.Errorf("%q has %q outside the alphabet", a, c)
		}
	}
	seen := map[string]bool{a: true}
	for _, other := range []struct {
		key    []byte
		member string
		gen    int
	}{{key, "m2", 0}, {key, "m1", 1}, {bytes.Repeat([]byte{2}, 32), "m1", 0}} {
		p, err := DerivePassword(other.key, other.member, other.gen, 16)
		if err != nil || seen[p] {
			t.Errorf("DerivePassword(%v, %s, %d) = %q, %v: not distinct", other.key[:1], other.member, other.gen, p, err)
		}
		seen[p] = true
	}
	if _, err := DerivePassword(key, "m1", 0, 4); err == nil {
		t.Error("a 4-symbol password was derived")
	}
	if _, err := DerivePassword(key[:8], "m1", 0, 16); err == nil {
		t.Error("a short key was accepted")
	}
}
