package admin

// Operator accounts of the web console over the unix socket (deskgate
// admin add|passwd|remove|list). Passwords arrive in the JSON body, never
// in a URL, and are hashed here; the CLI reads them from the terminal or
// stdin.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/console"
)

// OperatorRequest is the body of POST /v1/operators and
// /v1/operators/passwd (and /v1/operators/remove, name only).
type OperatorRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role,omitempty"`
	Password string `json:"password,omitempty"`
}

// OperatorView is an operator as GET /v1/operators lists it (no hash).
type OperatorView struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Operator changes ChangeOperator applies.
const (
	OperatorAdd    = "add"
	OperatorPasswd = "passwd"
	OperatorRemove = "remove"
)

// Operators is the store side of the console's operator accounts (the
// composition root implements it; Options.Operators).
type Operators interface {
	Operators() ([]OperatorView, error)
	// ChangeOperator applies op (OperatorAdd, OperatorPasswd or
	// OperatorRemove) to the operator name, with the validated role ("" on
	// passwd: keep it) and password hash ("" on remove), and audits it. A
	// refusal (exists, no such operator) is an *Error with its status.
	ChangeOperator(op, name, role, hash string) error
}

func (s *Server) operatorRoutes(mux *routeMux, ops Operators) {
	mux.HandleFunc("GET /v1/operators", func(w http.ResponseWriter, _ *http.Request) {
		list, err := ops.Operators()
		if err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		if list == nil {
			list = []OperatorView{}
		}
		WriteJSON(w, http.StatusOK, list)
	})
	change := func(w http.ResponseWriter, r *http.Request) { handleOperatorChange(w, r, ops) }
	for _, p := range []string{"POST /v1/operators", "POST /v1/operators/passwd", "POST /v1/operators/remove"} {
		mux.HandleFunc(p, change)
	}
}

func operatorNameOK(s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func handleOperatorChange(w http.ResponseWriter, r *http.Request, ops Operators) {
	if !fromSocket(r) {
		WriteError(w, http.StatusForbidden, errors.New("operator accounts are changed only over the unix socket (deskgate admin add|passwd|remove on the box)"))
		return
	}
	var req OperatorRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("operator: bad request body: %w", err))
		return
	}
	if !operatorNameOK(req.Name) {
		WriteError(w, http.StatusBadRequest, fmt.Errorf("operator name %q: use 2-32 characters a-z, 0-9, '.', '-' or '_'", req.Name))
		return
	}
	op := OperatorAdd
	switch strings.TrimPrefix(r.URL.Path, "/v1/operators") {
	case "/passwd":
		op = OperatorPasswd
	case "/remove":
		op = OperatorRemove
	}
	var hash string
	if op != OperatorRemove {
		var err error
		if hash, err = console.HashPassword(req.Password); err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("operator %s: %w", req.Name, err))
			return
		}
	}
	roleOK := req.Role == console.RoleOperator || req.Role == console.RoleAdmin
	switch {
	case op == OperatorAdd && !roleOK:
		WriteError(w, http.StatusBadRequest, fmt.Errorf("operator %s: role %q: use operator or admin", req.Name, req.Role))
		return
	case op == OperatorPasswd && req.Role != "" && !roleOK:
		WriteError(w, http.StatusBadRequest, fmt.Errorf("role %q: use operator or admin", req.Role))
		return
	case op == OperatorRemove:
		req.Role = ""
	}
	if err := ops.ChangeOperator(op, req.Name, req.Role, hash); err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "name": req.Name})
}
