package admin

import "time"

// ClientCert is one EAP-TLS client certificate the local CA issued
// (GET /v1/certs, POST /v1/certs/revoke).
type ClientCert struct {
	Serial   string    `json:"serial"`
	Identity string    `json:"identity"`
	IssuedAt time.Time `json:"issuedAt,omitzero"`
	NotAfter time.Time `json:"notAfter,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	Live     bool      `json:"live"`
}
