package peer

import (
	"bytes"
	"crypto/rand"
	"crypto/x509/pkix"
	"errors"
	"io"
	"strings"
)

var randReader = rand.Reader

func randRead(b []byte) (int, error) { return rand.Read(b) }

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, errors.New("answer too large")
	}
	return b, nil
}

func trimBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
