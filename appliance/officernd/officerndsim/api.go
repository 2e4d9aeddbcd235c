package officerndsim

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// window counts requests in a rolling minute and per UTC day.
type window struct {
	times  []time.Time
	day    string
	dayCnt int
}

func (w *window) prune(now time.Time) {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = w.times[i:]
	if d := now.UTC().Format(time.DateOnly); d != w.day {
		w.day, w.dayCnt = d, 0
	}
}

func (w *window) add(now time.Time) {
	w.times = append(w.times, now)
	w.dayCnt++
}

// resetIn is the seconds until the oldest request leaves the minute.
func (w *window) resetIn(now time.Time) int {
	if len(w.times) == 0 {
		return 60
	}
	return max(1, int(math.Ceil(w.times[0].Add(time.Minute).Sub(now).Seconds())))
}

// setHeaders writes the x-ratelimit-*-<kind>-* headers.
func (w *window) setHeaders(h http.Header, kind string, perMinute int, now time.Time) {
	if perMinute <= 0 {
		perMinute = 10000
	}
	perDay := perMinute * 1440
	mid := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day()+1, 0, 0, 0, 0, time.UTC)
	h.Set("x-ratelimit-limit-"+kind+"-minute", strconv.Itoa(perMinute))
	h.Set("x-ratelimit-remaining-"+kind+"-minute", strconv.Itoa(max(0, perMinute-len(w.times))))
	h.Set("x-ratelimit-reset-"+kind+"-minute", strconv.Itoa(w.resetIn(now)))
	h.Set("x-ratelimit-limit-"+kind+"-day", strconv.Itoa(perDay))
	h.Set("x-ratelimit-remaining-"+kind+"-day", strconv.Itoa(max(0, perDay-w.dayCnt)))
	h.Set("x-ratelimit-reset-"+kind+"-day", strconv.Itoa(int(math.Ceil(mid.Sub(now).Seconds()))))
}

// apiReq is a routed API request.
type apiReq struct {
	res    *resource
	name   string // collection
	id     string
	action string // "list", "count", "get", "create", "update", "delete", "cancel"
	route  string // for stats
}

func (s *Sim) routeAPI(method string, segs []string) (apiReq, bool) {
	if len(segs) == 0 || segs[0] == "" {
		return apiReq{}, false
	}
	res := resources[segs[0]]
	if res == nil {
		return apiReq{}, false
	}
	a := apiReq{res: res, name: segs[0]}
	base := "/" + segs[0]
	switch {
	case len(segs) == 1 && method == http.MethodGet:
		a.action, a.route = "list", "GET "+base
	case len(segs) == 1 && method == http.MethodPost && res.create:
		a.action, a.route = "create", "POST "+base
	case len(segs) == 2 && segs[0] == "bookings" && segs[1] == "occurrences" && method == http.MethodGet:
		a.action, a.route = "occurrences", "GET "+base+"/occurrences"
	case len(segs) == 2 && segs[1] == "count" && method == http.MethodGet:
		a.action, a.route = "count", "GET "+base+"/count"
	case len(segs) == 2 && method == http.MethodGet:
		a.action, a.route = "get", "GET "+base+"/{id}"
	case len(segs) == 2 && res.update != "" && method == res.update:
		a.action, a.route = "update", method+" "+base+"/{id}"
	case len(segs) == 2 && method == http.MethodDelete && res.del:
		a.action, a.route = "delete", "DELETE "+base+"/{id}"
	case len(segs) == 3 && segs[0] == "bookings" && segs[2] == "cancel" && method == http.MethodPost:
		a.action, a.route = "cancel", "POST "+base+"/{id}/cancel"
	default:
		return apiReq{}, false
	}
	if len(segs) >= 2 && a.action != "occurrences" {
		a.id = segs[1]
	}
	return a, true
}

// scopeFor is the scope an action needs.
func scopeFor(a apiReq) string {
	switch a.action {
	case "list", "count", "get", "occurrences":
		return a.res.scope + ".read"
	case "create":
		return a.res.scope + ".create"
	case "delete":
		return a.res.scope + ".delete"
	default:
		return a.res.scope + ".update"
	}
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/v2/organizations/")
	slug, tail, _ := strings.Cut(rest, "/")
	a, ok := s.routeAPI(r.Method, strings.Split(strings.Trim(tail, "/"), "/"))
	route := a.route
	if !ok {
		route = r.Method + " (unrouted)"
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.Paths[route]++
	s.apiCount++
	nth := s.apiCount
	f := s.faults
	s.mu.Unlock()
	if !ok {
		writeNest(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, "Not Found")
		return
	}

	// Authentication and scope: both fail with the same 401.
	tok, hasTok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	ti, known := s.tokens[strings.TrimSpace(tok)]
	now := s.nowLocked()
	s.mu.Unlock()
	if !hasTok || !known || !now.Before(ti.expires) || !ti.scopes[scopeFor(a)] {
		writeNest(w, http.StatusUnauthorized, "Unauthorized access", "Unauthorized")
		return
	}
	if slug != s.opts.OrgSlug {
		writeJSON(w, http.StatusInternalServerError, nestError{StatusCode: 500, Message: "Organization not found",
			Error: "Internal Server Error", Timestamp: iso(now), Path: r.URL.Path})
		return
	}

	// Rate limits: reads and writes are counted apart; only reads are
	// limited, when the fault is set.
	read := r.Method == http.MethodGet
	s.mu.Lock()
	win, kind := &s.writes, "write"
	if read {
		win, kind = &s.reads, "read"
	}
	win.prune(now)
	throttled := read && f.RateLimitPerMinute > 0 && len(win.times) >= f.RateLimitPerMinute
	if throttled {
		s.stats.Throttled++
	} else {
		win.add(now)
	}
	s.reads.prune(now)
	s.reads.setHeaders(w.Header(), "read", f.RateLimitPerMinute, now)
	if kind == "write" {
		win.setHeaders(w.Header(), "write", 0, now)
	}
	s.mu.Unlock()
	if throttled {
		w.Header().Set("Retry-After", w.Header().Get("x-ratelimit-reset-read-minute"))
		writeNest(w, http.StatusTooManyRequests, "ThrottlerException: Too Many Requests", "Too Many Requests")
		return
	}
	if f.Fail500Every > 0 && nth%f.Fail500Every == 0 {
		s.mu.Lock()
		s.stats.Failed++
		s.mu.Unlock()
		writeNest(w, http.StatusInternalServerError, "Internal server error", "Internal Server Error")
		return
	}

	var body doc
	if a.action == "create" || a.action == "update" {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			err = json.Unmarshal(b, &body)
		}
		if err != nil || body == nil {
			if err == nil {
				err = errors.New("empty body")
			}
			badRequest("body must be a JSON object: " + err.Error()).write(w)
			return
		}
	}

	var (
		code = http.StatusOK
		out  any
		aerr *apiError
	)
	switch a.action {
	case "list":
		out, aerr = s.list(a, r.URL.RawQuery)
	case "count":
		out, aerr = s.count(a, r.URL.RawQuery)
	case "occurrences":
		out, aerr = s.listOccurrences(r.URL.RawQuery)
	case "get":
		out, aerr = s.get(a)
	case "create":
		code = http.StatusCreated
		out, aerr = s.create(a, body)
	case "update":
		out, aerr = s.update(a, body)
	case "delete":
		out, aerr = s.delete(a)
	case "cancel":
		out, aerr = s.cancelBooking(a)
	}
	if aerr != nil {
		aerr.write(w)
		return
	}
	writeJSON(w, code, out)
}

// parseQuery turns a list query string into a query for resource res.
func parseQuery(res *resource, raw string, paging bool) (query, *apiError) {
	q := query{limit: 50}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, badRequest("malformed query string")
	}
	var msgs []string
	keys := slices.Sorted(maps.Keys(vals))
	for _, k := range keys {
		v := vals[k]
		last := v[len(v)-1]
		switch k {
		case "$limit":
			if !paging {
				msgs = append(msgs, "property $limit should not exist")
				continue
			}
			n, err := strconv.Atoi(last)
			switch {
			case err != nil:
				msgs = append(msgs, "$limit must be an integer number")
			case n > 50:
				msgs = append(msgs, "$limit must not be greater than 50")
			case n < 1:
				msgs = append(msgs, "$limit must not be less than 1")
			default:
				q.limit = n
			}
			continue
		case "$cursorNext", "$cursorPrev", "$select":
			if !paging {
				msgs = append(msgs, "property "+k+" should not exist")
				continue
			}
			switch k {
			case "$cursorNext":
				q.cursorNext = last
			case "$cursorPrev":
				q.cursorPrev = last
			default:
				for _, f := range strings.Split(last, ",") {
					if f = strings.TrimSpace(f); f != "" {
						q.selects = append(q.selects, f)
					}
				}
			}
			continue
		case "$sort":
			if res.sorts == nil || !paging {
				msgs = append(msgs, "property $sort should not exist")
				continue
			}
			f, desc := strings.CutPrefix(last, "-")
			if !slices.Contains(res.sorts, f) {
				msgs = append(msgs, "$sort must be one of the following values: "+strings.Join(res.sorts, ", "))
				continue
			}
			q.sortField, q.sortDesc = f, desc
			if f == "_id" {
				q.sortField = ""
			}
			continue
		}
		field, op := k, "$eq"
		if i := strings.IndexByte(k, '['); i > 0 && strings.HasSuffix(k, "]") {
			field, op = k[:i], k[i+1:len(k)-1]
		}
		if field == "properties" && !strings.HasPrefix(op, "$") {
			if !res.properties {
				msgs = append(msgs, "property properties should not exist")
				continue
			}
			q.filters = append(q.filters, filter{field: "properties." + op, op: "$eq", vals: []string{last}})
			continue
		}
		if !slices.Contains(res.filters, field) {
			msgs = append(msgs, "property "+field+" should not exist")
			continue
		}
		f := filter{field: field, op: op, date: slices.Contains(res.dates, field)}
		switch op {
		case "$eq", "$ne":
			f.vals = []string{last}
		case "$in", "$nin":
			for _, x := range v {
				f.vals = append(f.vals, strings.Split(x, ",")...)
			}
		case "$gt", "$gte", "$lt", "$lte":
			f.vals = []string{last}
			if f.date {
				t, ok := parseInstant(last)
				if !ok {
					msgs = append(msgs, field+" must be a valid ISO 8601 date string")
					continue
				}
				f.t = t
				f.vals = []string{iso(t)}
			}
		default:
			msgs = append(msgs, "property "+k+" should not exist")
			continue
		}
		if f.date && (op == "$eq" || op == "$ne") {
			// Exact date matches compare instants too.
			if t, ok := parseInstant(last); ok {
				f.vals = []string{iso(t)}
			}
		}
		q.filters = append(q.filters, f)
	}
	if len(msgs) > 0 {
		return q, badRequest(msgs...)
	}
	if q.cursorNext != "" && q.cursorPrev != "" {
		return q, &apiError{http.StatusGatewayTimeout, "Gateway Timeout"}
	}
	return q, nil
}

// getter reads a field of a record of collection name, computing the
// fields the server derives (membership calculatedStatus, pass status).
// Callers hold s.mu.
func (s *Sim) getter(name string) func(doc, string) any {
	now := s.nowLocked()
	switch name {
	case "memberships":
		return func(d doc, f string) any {
			if f == "calculatedStatus" {
				return s.calculatedStatus(d, now)
			}
			return lookup(d, f)
		}
	case "passes":
		return func(d doc, f string) any {
			if f == "status" {
				return passStatus(d, now)
			}
			return lookup(d, f)
		}
	}
	return lookup
}

// view returns the record as served: computed fields filled in, and
// limited to selects (plus _id) when given. Callers hold s.mu.
func (s *Sim) view(name string, d doc, selects []string) doc {
	now := s.nowLocked()
	out := d
	switch name {
	case "memberships":
		out = maps.Clone(d)
		out["calculatedStatus"] = s.calculatedStatus(d, now)
	case "passes":
		out = maps.Clone(d)
		out["status"] = passStatus(d, now)
	}
	if len(selects) > 0 {
		sel := doc{"_id": d["_id"]}
		for _, f := range selects {
			if v, ok := out[f]; ok {
				sel[f] = v
			}
		}
		out = sel
	}
	return out
}

// queryRes is the resource description filters are checked against: the
// memberships quirk is lifted when Options.MembershipsModifiedFilter says
// so (a third-party report has the API accept it; testers saw a 400).
func (s *Sim) queryRes(a apiReq) *resource {
	if a.name != "memberships" || !s.opts.MembershipsModifiedFilter {
		return a.res
	}
	r := *a.res
	r.filters = append(slices.Clone(r.filters), "createdAt", "modifiedAt")
	r.dates = append(slices.Clone(r.dates), "createdAt", "modifiedAt")
	return &r
}

func (s *Sim) list(a apiReq, raw string) (any, *apiError) {
	q, aerr := parseQuery(s.queryRes(a), raw, true)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := list(s.cols[a.name], q, s.getter(a.name))
	if err != nil {
		return nil, serverError("Internal server error")
	}
	for i, d := range p.Results {
		p.Results[i] = s.view(a.name, d, q.selects)
	}
	// Marshal under the lock: the documents are shared with writers.
	b, err := json.Marshal(p)
	if err != nil {
		return nil, serverError(err.Error())
	}
	return json.RawMessage(b), nil
}

func (s *Sim) count(a apiReq, raw string) (any, *apiError) {
	q, aerr := parseQuery(s.queryRes(a), raw, false)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]int{"total": count(s.cols[a.name], q, s.getter(a.name))}, nil
}

func (s *Sim) get(a apiReq) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.cols[a.name].docs[a.id]
	if !ok {
		if !isObjectID(a.id) {
			return nil, serverError("Cast to ObjectId failed for value \"" + a.id + "\" (type string) at path \"_id\"")
		}
		return nil, notFound(a.id)
	}
	b, err := json.Marshal(s.view(a.name, d, nil))
	if err != nil {
		return nil, serverError(err.Error())
	}
	return json.RawMessage(b), nil
}
