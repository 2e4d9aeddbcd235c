package officernd

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors callers branch on. Use errors.Is; an *APIError unwraps to
// the one that matches its status.
var (
	// ErrCredentials: the token endpoint rejected the client id or secret.
	ErrCredentials = errors.New("officernd: credentials rejected by token endpoint: check client_id and client_secret")
	// ErrScope: a scope was not granted to the app, either when requesting
	// the token or on an API call answered 401 despite a fresh token.
	ErrScope = errors.New("officernd: permission denied: grant the app the needed flex.* scopes under Settings > Developer Tools > Applications")
	// ErrOrgNotFound: the organization slug is unknown (OfficeRnD answers 500).
	ErrOrgNotFound = errors.New("officernd: organization not found: check the org slug (the <slug> in app.officernd.com/admin/<slug>)")
	// ErrRateLimited: the API kept answering 429 until retries ran out.
	ErrRateLimited = errors.New("officernd: rate limited: retries exhausted")
	// ErrUnreachable: DNS, connect, TLS or timeout failures after retries.
	ErrUnreachable = errors.New("officernd: API unreachable")
	// ErrNotFound: the API answered 404.
	ErrNotFound = errors.New("officernd: not found")
	// ErrBadRequest: the API answered 400 (validation, unknown parameter).
	ErrBadRequest = errors.New("officernd: bad request")
	// ErrServer: the API answered 5xx until retries ran out.
	ErrServer = errors.New("officernd: server error")

	// ErrSignatureMissing: no officernd-signature header, or no t= or signature= in it.
	ErrSignatureMissing = errors.New("officernd: webhook signature missing")
	// ErrSignatureInvalid: the signature does not match the body and secret.
	ErrSignatureInvalid = errors.New("officernd: webhook signature invalid")
	// ErrSignatureStale: the signature's timestamp is outside the tolerance.
	ErrSignatureStale = errors.New("officernd: webhook signature timestamp outside tolerance")
	// ErrInvalidEvent: a webhook body is not a well-formed event envelope.
	ErrInvalidEvent = errors.New("officernd: invalid webhook event")
)

// APIError is a non-2xx answer from the API (after any retries).
type APIError struct {
	Status  int    // HTTP status
	Method  string // GET, POST, ...
	Path    string // path below the API base, with query
	Message string // the NestJS message(s), or a body excerpt
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "officernd: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	switch e.Unwrap() {
	case ErrScope:
		b.WriteString(" (the app may lack the scope for this resource: grant its flex.* scope under Settings > Developer Tools > Applications)")
	case ErrOrgNotFound:
		b.WriteString(" (check the org slug)")
	}
	return b.String()
}

// Unwrap returns the sentinel matching the status, or nil.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return ErrScope
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusBadRequest:
		return ErrBadRequest
	case e.Status == http.StatusTooManyRequests:
		return ErrRateLimited
	case isOrgNotFound(e.Status, e.Message):
		return ErrOrgNotFound
	case e.Status >= 500:
		return ErrServer
	}
	return nil
}

// Is reports whether target is the sentinel for this error's status.
func (e *APIError) Is(target error) bool {
	s := e.Unwrap()
	return s != nil && s == target
}

func isOrgNotFound(status int, msg string) bool {
	return status >= 500 && strings.Contains(strings.ToLower(msg), "organization not found")
}
