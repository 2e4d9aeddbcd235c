// Package officernd is deskgate's client for the OfficeRnD v2 ("Flex") REST
// API: the shared resource types (with tolerant decoding of v1/internal
// field names), OAuth2 client-credentials authentication, cursor paging,
// retries with backoff and rate-limit handling, typed errors, and webhook
// envelope parsing and signature verification.
//
// It is a leaf: it imports only the standard library and golang.org/x/oauth2.
// appliance/mirror and the simulator (officerndsim, cmd/officernd-sim) import it.
package officernd
