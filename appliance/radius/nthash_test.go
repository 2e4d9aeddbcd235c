package radius

import (
	"bytes"
	"strings"
	"testing"

	"github.com/deskgate/deskgate/appliance/creds"
)

// The allocation-free PAP hash must agree with the one accounts store.
func TestNTHashIntoMatchesCreds(t *testing.T) {
	for _, pw := range []string{"", "clientPass", "Grüße-Ωmega", "emoji 😀 pair", strings.Repeat("long-password-", 40)} {
		var got [16]byte
		ntHashInto(&got, []byte(pw))
		if want := creds.NTHash(pw); !bytes.Equal(got[:], want) {
			t.Errorf("ntHashInto(%q) = %x, creds.NTHash = %x", pw, got, want)
		}
	}
}
