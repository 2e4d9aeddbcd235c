package officerndsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
)

// singular names a collection's record in "Specified X was not found".
var singular = map[string]string{
	"members": "member", "companies": "company", "memberships": "membership", "plans": "plan",
	"locations": "location", "resources": "resource", "bookings": "booking", "visitors": "visitor",
	"passes": "pass", "webhooks": "webhook",
}

// checkFields applies the NestJS whitelist: unknown or server-set
// properties are rejected, required ones must be present.
func checkFields(res *resource, body doc, update bool) *apiError {
	var msgs []string
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if slices.Contains(res.writable, k) || (update && slices.Contains(res.updatable, k)) {
			continue
		}
		msgs = append(msgs, "property "+k+" should not exist")
	}
	if !update {
		for _, k := range res.required {
			if isEmpty(body[k]) {
				msgs = append(msgs, k+" should not be empty")
			}
		}
	}
	if len(msgs) > 0 {
		return badRequest(msgs...)
	}
	return nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	}
	return false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// datePart is the calendar date of an ISO date or instant ("" if none).
func datePart(v any) string {
	s := str(v)
	if len(s) < 10 {
		return ""
	}
	return s[:10]
}

// normDate turns a date or instant into the API's midnight-UTC form.
func normDate(v any, field string) (string, *apiError) {
	t, ok := parseInstant(str(v))
	if !ok {
		return "", badRequest(field + " must be a valid ISO 8601 date string")
	}
	return isoDate(t.Date()), nil
}

// normInstant turns an instant into the API's millisecond UTC form.
func normInstant(v any, field string) (string, *apiError) {
	t, ok := parseInstant(str(v))
	if !ok {
		return "", badRequest(field + " must be a valid ISO 8601 date string")
	}
	return iso(t), nil
}

// tz returns a location's time zone (UTC when unknown). Callers hold s.mu.
func (s *Sim) tz(locID any) *time.Location {
	id := str(locID)
	if l, ok := s.tzCache[id]; ok {
		return l
	}
	l := time.UTC
	if d := s.cols["locations"].docs[id]; d != nil {
		if z, err := time.LoadLocation(str(d["timezone"])); err == nil {
			l = z
		}
	}
	s.tzCache[id] = l
	return l
}

// calculatedStatus derives a membership's calculatedStatus from its
// approval status and its dates, read as calendar dates in its location's
// time zone. Callers hold s.mu.
func (s *Sim) calculatedStatus(d doc, now time.Time) string {
	if str(d["status"]) == "not_approved" {
		return "not_approved"
	}
	today := now.In(s.tz(d["location"])).Format(time.DateOnly)
	if start := datePart(d["startDate"]); start != "" && today < start {
		return "not_started"
	}
	if end := datePart(d["endDate"]); end != "" && today > end {
		return "expired"
	}
	return "active"
}

// passStatus derives a pass's status: used up, expired, or valid.
func passStatus(d doc, now time.Time) string {
	cnt, _ := num(d["count"])
	used, _ := num(d["usedCount"])
	if cnt > 0 && used >= cnt {
		return "used"
	}
	for _, k := range []string{"validTo", "endDate"} {
		if v := str(d[k]); v != "" {
			if t, ok := parseInstant(v); ok && now.After(t) && (k == "validTo" || now.UTC().Format(time.DateOnly) > datePart(v)) {
				return "expired"
			}
		}
	}
	if v := str(d["validFrom"]); v != "" {
		if t, ok := parseInstant(v); ok && now.Before(t) {
			return "pending"
		}
	}
	return "valid"
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// checkRefs validates reference fields: a malformed or dangling id is a
// 500, as the real service answers. Callers hold s.mu.
func (s *Sim) checkRefs(res *resource, d doc) *apiError {
	for _, f := range slices.Sorted(maps.Keys(res.refs)) {
		v, ok := d[f]
		if !ok || v == nil {
			continue
		}
		id, isStr := v.(string)
		target := res.refs[f]
		if !isStr || !isObjectID(id) {
			return serverError(fmt.Sprintf("Cast to ObjectId failed for value %q at path %q", fmt.Sprint(v), f))
		}
		if s.cols[target].docs[id] == nil {
			return serverError("Specified " + singular[target] + " was not found")
		}
	}
	return nil
}

// prepare validates and normalizes a create (old == nil) or an update
// body merged over old, returning the new record. Callers hold s.mu.
func (s *Sim) prepare(name string, res *resource, old, body doc) (doc, *apiError) {
	d := doc{}
	maps.Copy(d, old)
	maps.Copy(d, body)
	if aerr := s.checkRefs(res, body); aerr != nil {
		return nil, aerr
	}
	now := s.nowLocked()
	switch name {
	case "members":
		if old == nil && d["status"] == nil {
			d["status"] = "active"
		}
		if v, ok := body["startDate"]; ok {
			sd, aerr := normDate(v, "startDate")
			if aerr != nil {
				return nil, aerr
			}
			d["startDate"] = sd
		}
	case "companies":
		if old == nil && d["status"] == nil {
			d["status"] = "active"
		}
	case "memberships":
		for _, k := range []string{"startDate", "endDate"} {
			if v, ok := body[k]; ok && v != nil {
				nd, aerr := normDate(v, k)
				if aerr != nil {
					return nil, aerr
				}
				d[k] = nd
			}
		}
		if v, ok := body["status"]; ok && v != "approved" && v != "not_approved" {
			return nil, badRequest("status must be one of the following values: approved, not_approved")
		}
		if _, ok := d["isPersonal"].(bool); !ok {
			d["isPersonal"] = false
		}
		if d["isPersonal"] == true && isEmpty(d["member"]) {
			return nil, badRequest("member should not be empty")
		}
		if d["isPersonal"] == false && isEmpty(d["company"]) {
			return nil, badRequest("company should not be empty")
		}
		if d["type"] == nil {
			d["type"] = "month_to_month"
		}
		if t := d["type"]; t != "month_to_month" && t != "fixed" {
			return nil, badRequest("type must be one of the following values: month_to_month, fixed")
		}
		if d["type"] == "fixed" && isEmpty(d["endDate"]) {
			return nil, badRequest("endDate should not be empty")
		}
		if e := datePart(d["endDate"]); e != "" && e < datePart(d["startDate"]) {
			return nil, badRequest("endDate must not be before startDate")
		}
		if old == nil {
			plan := s.cols["plans"].docs[str(d["plan"])]
			d["status"] = "approved"
			setDefault(d, "intervalLength", plan["intervalLength"])
			setDefault(d, "intervalCount", 1)
			setDefault(d, "isLocked", false)
			setDefault(d, "price", plan["price"])
			setDefault(d, "deposit", 0)
			setDefault(d, "source", "api")
		}
	case "bookings":
		for _, k := range []string{"start", "end"} {
			if v, ok := body[k]; ok {
				t, aerr := normInstant(v, k)
				if aerr != nil {
					return nil, aerr
				}
				d[k] = t
			}
		}
		if str(d["end"]) <= str(d["start"]) {
			return nil, badRequest("end must be after start")
		}
		if r, ok := body["recurrence"]; ok && r != nil {
			rec, isObj := r.(map[string]any)
			if !isObj {
				return nil, badRequest("recurrence must be an object")
			}
			if _, err := parseRRule(str(rec["rrule"])); err != nil {
				return nil, badRequest(err.Error())
			}
		}
		if isEmpty(d["member"]) && isEmpty(d["company"]) {
			return nil, badRequest("member should not be empty")
		}
		rsc := s.cols["resources"].docs[str(d["resource"])]
		d["location"] = rsc["location"]
		d["timezone"] = s.tz(rsc["location"]).String()
		setDefault(d, "isCancelled", false)
		setDefault(d, "isTentative", false)
		setDefault(d, "isFree", false)
		setDefault(d, "visitors", []any{})
		setDefault(d, "members", []any{})
		setDefault(d, "source", "api")
	case "visitors":
		setDefault(d, "type", "preregistration")
	case "passes":
		if isEmpty(d["member"]) && isEmpty(d["company"]) {
			return nil, badRequest("member should not be empty")
		}
		setDefault(d, "isPersonal", !isEmpty(d["member"]))
		setDefault(d, "usedCount", 0)
		setDefault(d, "intervalLength", "once")
		for _, k := range []string{"startDate", "endDate", "renewDate"} {
			if v, ok := body[k]; ok && v != nil {
				nd, aerr := normDate(v, k)
				if aerr != nil {
					return nil, aerr
				}
				d[k] = nd
			}
		}
		for _, k := range []string{"validFrom", "validTo"} {
			if v, ok := body[k]; ok && v != nil {
				t, aerr := normInstant(v, k)
				if aerr != nil {
					return nil, aerr
				}
				d[k] = t
			}
		}
		if c, ok := num(d["count"]); !ok || c < 0 {
			return nil, badRequest("count must be a positive number")
		}
	case "webhooks":
		u, err := url.Parse(str(d["url"]))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, badRequest("url must be a URL address")
		}
		switch et := d["eventTypes"].(type) {
		case nil:
			d["eventTypes"] = []any{}
		case []any:
			for _, e := range et {
				if _, ok := e.(string); !ok {
					return nil, badRequest("each value in eventTypes must be a string")
				}
			}
		default:
			return nil, badRequest("eventTypes must be an array")
		}
		setDefault(d, "isEnabled", true)
		if old == nil {
			d["secret"] = randomHex(24)
		}
	}
	d["modifiedAt"] = iso(now)
	d["modifiedBy"] = s.seed.IDs["user:api"]
	if old == nil {
		d["_id"] = s.ids.newID(now)
		d["createdAt"] = d["modifiedAt"]
		d["createdBy"] = d["modifiedBy"]
	}
	return d, nil
}

func setDefault(d doc, k string, v any) {
	if _, ok := d[k]; !ok && v != nil {
		d[k] = v
	}
}

func (s *Sim) create(a apiReq, body doc) (any, *apiError) {
	if aerr := checkFields(a.res, body, false); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, aerr := s.prepare(a.name, a.res, nil, body)
	if aerr != nil {
		return nil, aerr
	}
	s.store(a.name, d)
	s.emit(a.name, "created", d, nil)
	s.slotEvents(a.name, nil, d)
	s.afterWrite(a.name, nil, d)
	return s.marshalView(a.name, d)
}

func (s *Sim) update(a apiReq, body doc) (any, *apiError) {
	if aerr := checkFields(a.res, body, true); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.cols[a.name].docs[a.id]
	if !ok {
		return nil, notFound(a.id)
	}
	d, aerr := s.prepare(a.name, a.res, old, body)
	if aerr != nil {
		return nil, aerr
	}
	s.replace(a.name, old, d)
	return s.marshalView(a.name, d)
}

// replace stores d over old and emits the update with previousAttributes.
// Callers hold s.mu.
func (s *Sim) replace(name string, old, d doc) {
	prev := s.changed(name, old, d)
	s.store(name, d)
	if len(prev) > 0 {
		s.emit(name, "updated", d, prev)
	}
	s.slotEvents(name, old, d)
	s.afterWrite(name, old, d)
}

// changed returns the old values of the fields that differ between old
// and d (as served), ignoring the modification stamps.
func (s *Sim) changed(name string, old, d doc) doc {
	ov, nv := s.view(name, old, nil), s.view(name, d, nil)
	prev := doc{}
	for k, v := range nv {
		if k == "modifiedAt" || k == "modifiedBy" {
			continue
		}
		if o, ok := ov[k]; !ok || !reflect.DeepEqual(o, v) {
			prev[k] = o // nil (JSON null) when the field was absent
		}
	}
	for k, o := range ov {
		if _, ok := nv[k]; !ok {
			prev[k] = o
		}
	}
	return prev
}

func (s *Sim) delete(a apiReq) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.cols[a.name].docs[a.id]
	if !ok {
		return nil, notFound(a.id)
	}
	out, aerr := s.marshalView(a.name, d)
	if aerr != nil {
		return nil, aerr
	}
	s.unstore(a.name, d)
	if a.res.removeEvent {
		s.emit(a.name, "removed", d, nil)
	}
	s.slotEvents(a.name, d, nil)
	s.afterWrite(a.name, d, nil)
	return out, nil
}

func (s *Sim) cancelBooking(a apiReq) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.cols["bookings"].docs[a.id]
	if !ok {
		return nil, notFound(a.id)
	}
	d := maps.Clone(old)
	d["isCancelled"] = true
	d["modifiedAt"] = iso(s.nowLocked())
	s.replace("bookings", old, d)
	return s.marshalView("bookings", d)
}

func (s *Sim) marshalView(name string, d doc) (any, *apiError) {
	b, err := json.Marshal(s.view(name, d, nil))
	if err != nil {
		return nil, serverError(err.Error())
	}
	return json.RawMessage(b), nil
}

// store puts d into its collection and keeps the membership indexes.
// Callers hold s.mu.
func (s *Sim) store(name string, d doc) {
	if name == "memberships" {
		if old := s.cols[name].docs[str(d["_id"])]; old != nil {
			s.unindex(old)
		}
		s.index(d)
	}
	if name == "locations" {
		delete(s.tzCache, str(d["_id"]))
	}
	s.cols[name].put(d)
}

func (s *Sim) unstore(name string, d doc) {
	if name == "memberships" {
		s.unindex(d)
	}
	s.cols[name].remove(str(d["_id"]))
}

func (s *Sim) index(d doc) {
	id := str(d["_id"])
	if m := str(d["member"]); m != "" {
		s.byMember[m] = append(s.byMember[m], id)
	}
	if c := str(d["company"]); c != "" && d["isPersonal"] != true {
		s.byCompany[c] = append(s.byCompany[c], id)
	}
}

func (s *Sim) unindex(d doc) {
	id := str(d["_id"])
	drop := func(m map[string][]string, k string) {
		if k == "" {
			return
		}
		m[k] = slices.DeleteFunc(m[k], func(x string) bool { return x == id })
		if len(m[k]) == 0 {
			delete(m, k)
		}
	}
	drop(s.byMember, str(d["member"]))
	drop(s.byCompany, str(d["company"]))
}

// afterWrite keeps member status consistent with memberships after a
// membership (or member) write. Callers hold s.mu.
func (s *Sim) afterWrite(name string, old, d doc) {
	if name != "memberships" {
		return
	}
	members := map[string]bool{}
	companies := map[string]bool{}
	for _, x := range []doc{old, d} {
		if x == nil {
			continue
		}
		if m := str(x["member"]); m != "" {
			members[m] = true
		}
		if c := str(x["company"]); c != "" && x["isPersonal"] != true {
			companies[c] = true
		}
	}
	if len(companies) > 0 {
		for _, id := range s.cols["members"].ids {
			if companies[str(s.cols["members"].docs[id]["company"])] {
				members[id] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(members)) {
		s.refreshMemberStatus(id)
	}
}

// derivedStatus is the member status their memberships imply, and false
// when they have none (the stored status stands). Callers hold s.mu.
func (s *Sim) derivedStatus(m doc) (string, bool) {
	id := str(m["_id"])
	ids := slices.Clone(s.byMember[id])
	if c := str(m["company"]); c != "" {
		for _, msID := range s.byCompany[c] {
			ms := s.cols["memberships"].docs[msID]
			if a := str(ms["member"]); a == "" || a == id {
				ids = append(ids, msID)
			}
		}
	}
	if len(ids) == 0 {
		return "", false
	}
	now := s.nowLocked()
	seen := map[string]bool{}
	for _, msID := range ids {
		seen[s.calculatedStatus(s.cols["memberships"].docs[msID], now)] = true
	}
	switch {
	case seen["active"]:
		return "active", true
	case seen["not_started"]:
		return "pending", true
	case seen["not_approved"]:
		return "not_approved", true
	default:
		return "former", true
	}
}

func (s *Sim) refreshMemberStatus(id string) {
	old := s.cols["members"].docs[id]
	if old == nil {
		return
	}
	st, ok := s.derivedStatus(old)
	if !ok || st == old["status"] {
		return
	}
	d := maps.Clone(old)
	d["status"] = st
	d["modifiedAt"] = iso(s.nowLocked())
	s.replace("members", old, d)
}

// Create inserts a record into collection name (e.g. "members") as a POST
// would, without HTTP, scopes or faults: validation, modifiedAt, member
// status and webhook events all apply. It returns the record as served.
func (s *Sim) Create(name string, body map[string]any) (map[string]any, error) {
	return s.direct(name, "", body, "create")
}

// Update changes record id of collection name as its PUT/PATCH would.
func (s *Sim) Update(name, id string, body map[string]any) (map[string]any, error) {
	return s.direct(name, id, body, "update")
}

// Delete removes record id of collection name as its DELETE would.
func (s *Sim) Delete(name, id string) error {
	_, err := s.direct(name, id, nil, "delete")
	return err
}

// slotEvents emits the occupancy-slot events of a write to a recurring
// booking. Callers hold s.mu.
func (s *Sim) slotEvents(name string, old, d doc) {
	if name != "bookings" || (old["recurrence"] == nil && d["recurrence"] == nil) {
		return
	}
	s.emitSlots(old, d)
}

// CancelBooking cancels booking id as POST /bookings/{id}/cancel would.
func (s *Sim) CancelBooking(id string) error {
	_, err := s.direct("bookings", id, nil, "cancel")
	return err
}

func (s *Sim) direct(name, id string, body doc, action string) (doc, error) {
	res := resources[name]
	if res == nil {
		return nil, fmt.Errorf("officerndsim: unknown collection %q", name)
	}
	a := apiReq{res: res, name: name, id: id, action: action}
	var out any
	var aerr *apiError
	switch action {
	case "create":
		out, aerr = s.create(a, body)
	case "update":
		out, aerr = s.update(a, body)
	case "delete":
		out, aerr = s.delete(a)
	case "cancel":
		out, aerr = s.cancelBooking(a)
	}
	if aerr != nil {
		return nil, fmt.Errorf("officerndsim: %s %s: %d %v", action, name, aerr.code, aerr.msg)
	}
	var d doc
	if err := json.Unmarshal(out.(json.RawMessage), &d); err != nil {
		return nil, err
	}
	return d, nil
}
