package officerndsim

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// doc is one stored record, shaped exactly as its v2 JSON (Mongo-style
// documents). Values are JSON-ish: string, bool, float64 or int, []any,
// []string, map[string]any and nil. Instants are stored as ISO strings with
// milliseconds in UTC, so that they sort lexicographically.
type doc = map[string]any

// isoMillis is how the API formats instants ("2026-11-27T04:10:52.000Z").
const isoMillis = "2006-01-02T15:04:05.000Z"

func iso(t time.Time) string { return t.UTC().Format(isoMillis) }

// isoDate is a calendar date as the API sends it: midnight UTC.
func isoDate(y int, m time.Month, d int) string {
	return iso(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
}

// collection holds one resource's documents, with their ids kept sorted so
// that the default listing order (by _id, like Mongo's natural order for
// ObjectIds) is stable while records come and go.
type collection struct {
	ids  []string
	docs map[string]doc
}

func newCollection() *collection { return &collection{docs: map[string]doc{}} }

func (c *collection) put(d doc) {
	id := d["_id"].(string)
	if _, ok := c.docs[id]; !ok {
		if n := len(c.ids); n == 0 || c.ids[n-1] < id {
			c.ids = append(c.ids, id)
		} else {
			i, _ := slices.BinarySearch(c.ids, id)
			c.ids = slices.Insert(c.ids, i, id)
		}
	}
	c.docs[id] = d
}

func (c *collection) remove(id string) {
	if _, ok := c.docs[id]; !ok {
		return
	}
	delete(c.docs, id)
	if i, ok := slices.BinarySearch(c.ids, id); ok {
		c.ids = slices.Delete(c.ids, i, i+1)
	}
}

// idGen makes 24-hex ObjectIds: 4 bytes of seconds, 5 bytes of per-process
// randomness and a 3-byte counter, like MongoDB. Seeded records use a fixed
// timestamp and a fixed middle, so their ids are the same on every run.
type idGen struct {
	counter uint32
	middle  [5]byte
}

// seedEpoch is the timestamp part of every seeded id (2024-01-15).
const seedEpoch = 0x65a47480

var seedMiddle = [5]byte{0x5e, 0xed, 0xde, 0x5c, 0x00}

func newIDGen() *idGen {
	g := &idGen{}
	if _, err := rand.Read(g.middle[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return g
}

func (g *idGen) make(sec uint32, middle [5]byte) string {
	g.counter++
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], sec)
	copy(b[4:9], middle[:])
	b[9] = byte(g.counter >> 16)
	b[10] = byte(g.counter >> 8)
	b[11] = byte(g.counter)
	return hex.EncodeToString(b[:])
}

// seedID is a deterministic id for seeded data.
func (g *idGen) seedID() string { return g.make(seedEpoch, seedMiddle) }

// newID is an id for a record created at t.
func (g *idGen) newID(t time.Time) string { return g.make(uint32(t.Unix()), g.middle) }

// randomHex returns n random bytes as hex (event ids, secrets, tokens).
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func isObjectID(s string) bool {
	if len(s) != 24 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ---- queries ----

// filter is one parsed query condition.
type filter struct {
	field string // dotted for properties: "properties.key"
	op    string // "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"
	vals  []string
	date  bool // compare as instants
	t     time.Time
}

// query is a parsed list request.
type query struct {
	limit      int
	cursorNext string
	cursorPrev string
	sortField  string // "" = _id
	sortDesc   bool
	selects    []string
	filters    []filter
}

// cursor is the decoded form of an opaque $cursorNext/$cursorPrev: the sort
// key and id of the item the page continues after (next) or before (prev),
// and how many items precede the page, for rangeStart.
type cursor struct {
	Sort string `json:"s,omitempty"`
	Desc bool   `json:"d,omitempty"`
	Key  string `json:"k,omitempty"`
	ID   string `json:"i"`
	N    int    `json:"n"`
}

var errBadCursor = errors.New("invalid cursor")

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, crc32.ChecksumIEEE(b))
	out = append(out, b...)
	return base64.RawURLEncoding.EncodeToString(out)
}

func decodeCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 5 {
		return cursor{}, errBadCursor
	}
	if binary.BigEndian.Uint32(raw) != crc32.ChecksumIEEE(raw[4:]) {
		return cursor{}, errBadCursor
	}
	var c cursor
	if err := json.Unmarshal(raw[4:], &c); err != nil || !isObjectID(c.ID) {
		return cursor{}, errBadCursor
	}
	return c, nil
}

// scalarString renders a stored value for comparison with a query value.
func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// values returns a stored value as the list of strings it matches: arrays
// match on any element, as in MongoDB.
func values(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scalarString(e)
		}
		return out
	case nil:
		return nil
	default:
		return []string{scalarString(x)}
	}
}

func parseInstant(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// match reports whether value v (from field f of a record) satisfies the
// filter.
func (f filter) match(v any) bool {
	vs := values(v)
	switch f.op {
	case "$eq", "$in":
		for _, x := range vs {
			if slices.Contains(f.vals, x) {
				return true
			}
		}
		return len(vs) == 0 && slices.Contains(f.vals, "null")
	case "$ne", "$nin":
		for _, x := range vs {
			if slices.Contains(f.vals, x) {
				return false
			}
		}
		return true
	}
	if len(vs) == 0 {
		return false
	}
	var c int
	switch {
	case f.date && len(vs[0]) == len(isoMillis) && vs[0][len(vs[0])-1] == 'Z':
		// Stored instants are canonical: compare as strings, no parsing.
		// (vals[0] is the instant in the same form, set by parseQuery.)
		c = cmp.Compare(vs[0], f.vals[0])
	case f.date:
		t, ok := parseInstant(vs[0])
		if !ok {
			return false
		}
		c = t.Compare(f.t)
	default:
		c = cmp.Compare(vs[0], f.vals[0])
	}
	switch f.op {
	case "$gt":
		return c > 0
	case "$gte":
		return c >= 0
	case "$lt":
		return c < 0
	case "$lte":
		return c <= 0
	}
	return false
}

// lookup reads a possibly dotted field ("properties.key") from d.
func lookup(d doc, field string) any {
	if v, ok := d[field]; ok {
		return v
	}
	head, rest, ok := strings.Cut(field, ".")
	if !ok {
		return nil
	}
	sub, _ := d[head].(map[string]any)
	if sub == nil {
		return nil
	}
	return lookup(sub, rest)
}

// page is the result of listing: the items and the range/cursor envelope.
type page struct {
	RangeStart int    `json:"rangeStart"`
	RangeEnd   int    `json:"rangeEnd"`
	CursorNext string `json:"cursorNext,omitempty"`
	CursorPrev string `json:"cursorPrev,omitempty"`
	Results    []doc  `json:"results"`
}

// sortKey returns the key a record sorts by under q ("" sort = by _id).
func sortKey(get func(doc, string) any, d doc, field string) string {
	if field == "" {
		return d["_id"].(string)
	}
	return scalarString(get(d, field))
}

// list runs q over c. get reads a field, including computed ones.
func list(c *collection, q query, get func(doc, string) any) (page, error) {
	matches := func(d doc) bool {
		for _, f := range q.filters {
			if !f.match(get(d, f.field)) {
				return false
			}
		}
		return true
	}
	var cur cursor
	var err error
	backward := false
	switch {
	case q.cursorNext != "":
		cur, err = decodeCursor(q.cursorNext)
	case q.cursorPrev != "":
		cur, err = decodeCursor(q.cursorPrev)
		backward = true
	}
	if err != nil {
		return page{}, err
	}
	hasCursor := q.cursorNext != "" || q.cursorPrev != ""
	if hasCursor && (cur.Sort != q.sortField || cur.Desc != q.sortDesc) {
		return page{}, errBadCursor
	}

	// Ordered candidates. Sorting by _id walks the id index directly;
	// any other sort collects the matches and sorts them (key, then _id).
	var ordered []doc
	start := 0
	if q.sortField == "" && !q.sortDesc {
		ids := c.ids
		if hasCursor {
			i, found := slices.BinarySearch(ids, cur.ID)
			if backward {
				ids = ids[:i]
			} else {
				if found {
					i++
				}
				ids = ids[i:]
			}
		}
		if backward {
			for j := len(ids) - 1; j >= 0 && len(ordered) < q.limit; j-- {
				if d := c.docs[ids[j]]; matches(d) {
					ordered = append(ordered, d)
				}
			}
			slices.Reverse(ordered)
			return finishPage(ordered, q, cur.N-len(ordered), true, cur.N-len(ordered) > 0, get), nil
		}
		for j := 0; j < len(ids) && len(ordered) <= q.limit; j++ {
			if d := c.docs[ids[j]]; matches(d) {
				ordered = append(ordered, d)
			}
		}
		before := 0
		if hasCursor {
			before = cur.N
		}
		more := len(ordered) > q.limit
		if more {
			ordered = ordered[:q.limit]
		}
		return finishPage(ordered, q, before, more, before > 0, get), nil
	}

	all := make([]doc, 0, 64)
	for _, id := range c.ids {
		if d := c.docs[id]; matches(d) {
			all = append(all, d)
		}
	}
	keys := make(map[string]string, len(all))
	for _, d := range all {
		keys[d["_id"].(string)] = sortKey(get, d, q.sortField)
	}
	less := func(a, b doc) int {
		ia, ib := a["_id"].(string), b["_id"].(string)
		r := cmp.Compare(keys[ia], keys[ib])
		if r == 0 {
			r = cmp.Compare(ia, ib)
		}
		if q.sortDesc {
			r = -r
		}
		return r
	}
	slices.SortFunc(all, less)
	if hasCursor {
		// Position just after (or before) the cursor's key in sort order.
		vsPivot := func(d doc) int {
			id := d["_id"].(string)
			r := cmp.Compare(keys[id], cur.Key)
			if r == 0 {
				r = cmp.Compare(id, cur.ID)
			}
			if q.sortDesc {
				r = -r
			}
			return r
		}
		start = sort.Search(len(all), func(i int) bool { return vsPivot(all[i]) > 0 })
		if backward {
			end := sort.Search(len(all), func(i int) bool { return vsPivot(all[i]) >= 0 })
			from := max(0, end-q.limit)
			ordered = all[from:end]
			return finishPage(ordered, q, cur.N-len(ordered), true, from > 0, get), nil
		}
	}
	rest := all[start:]
	more := len(rest) > q.limit
	if more {
		rest = rest[:q.limit]
	}
	before := 0
	if hasCursor {
		before = cur.N
	}
	return finishPage(rest, q, before, more, before > 0, get), nil
}

func finishPage(items []doc, q query, before int, more, hasPrev bool, get func(doc, string) any) page {
	before = max(before, 0)
	p := page{Results: items, RangeStart: before + 1, RangeEnd: before + len(items)}
	if len(items) == 0 {
		p.RangeStart = before
		p.Results = []doc{}
		return p
	}
	if more {
		last := items[len(items)-1]
		p.CursorNext = encodeCursor(cursor{Sort: q.sortField, Desc: q.sortDesc, Key: sortKey(get, last, q.sortField), ID: last["_id"].(string), N: p.RangeEnd})
	}
	if hasPrev {
		first := items[0]
		p.CursorPrev = encodeCursor(cursor{Sort: q.sortField, Desc: q.sortDesc, Key: sortKey(get, first, q.sortField), ID: first["_id"].(string), N: before})
	}
	return p
}

// count returns how many records of c match q's filters.
func count(c *collection, q query, get func(doc, string) any) int {
	n := 0
	for _, id := range c.ids {
		d := c.docs[id]
		ok := true
		for _, f := range q.filters {
			if !f.match(get(d, f.field)) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}
