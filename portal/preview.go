package portal

import (
	"errors"
	"net/http"
	"net/http/httptest"
)

// Preview renders the login page a guest at locationID sees in lang, for
// the operator console. It touches no session and no rate limit. The
// page's stylesheet links are relative to the portal.
func (s *Server) Preview(locationID, lang string) ([]byte, error) {
	loc, ok := s.locs[locationID]
	if !ok {
		return nil, errors.New("portal preview: unknown location")
	}
	if _, ok := s.msgs[lang]; !ok {
		return nil, errors.New("portal preview: language not offered")
	}
	r := httptest.NewRequest(http.MethodGet, "/?lang="+lang, nil)
	w := httptest.NewRecorder()
	s.showLogin(w, r, loc, http.StatusOK, "", nil)
	if w.Code != http.StatusOK {
		return nil, errors.New("portal preview: " + http.StatusText(w.Code))
	}
	return w.Body.Bytes(), nil
}
