package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/store"
)

const (
	maxWebhookBody = 1 << 20
	hookWorkers    = 4
	hookQueueLen   = 1024
	// seenRetention is how long event ids are remembered for deduplication.
	seenRetention = 7 * 24 * time.Hour
)

// WebhookStats counts deliveries by outcome.
type WebhookStats struct {
	Received     int64     `json:"received"`
	Accepted     int64     `json:"accepted"`
	BadSignature int64     `json:"badSignature"`
	Invalid      int64     `json:"invalid"`
	Duplicate    int64     `json:"duplicate"`
	Applied      int64     `json:"applied"`
	Failed       int64     `json:"failed"`
	Ignored      int64     `json:"ignored"`
	LastAccepted time.Time `json:"lastAccepted,omitzero"`
	LastApplied  time.Time `json:"lastApplied,omitzero"`
}

type queued struct {
	ev      officernd.Event
	arrived time.Time
}

// webhookIntake verifies and queues deliveries; its workers apply them in
// arrival order per member (events are routed to a worker by the member
// they concern).
type webhookIntake struct {
	s      *Syncer
	queues []chan queued

	mu       sync.Mutex
	inflight map[string]bool
	st       WebhookStats
}

func newWebhookIntake(s *Syncer) *webhookIntake {
	w := &webhookIntake{s: s, inflight: map[string]bool{}}
	for i := 0; i < hookWorkers; i++ {
		w.queues = append(w.queues, make(chan queued, hookQueueLen))
	}
	return w
}

func (w *webhookIntake) stats() WebhookStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *webhookIntake) bump(f func(*WebhookStats), outcome string) {
	w.mu.Lock()
	f(&w.st)
	w.mu.Unlock()
	w.s.opts.Metrics.Webhooks.WithLabelValues(outcome).Inc()
}

// WebhookHandler returns the HTTP handler OfficeRnD delivers to. It answers
// within milliseconds: the event is verified, deduplicated and queued; the
// work happens afterwards.
func (s *Syncer) WebhookHandler() http.Handler { return s.hooks }

func (w *webhookIntake) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s := w.s
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		httpError(rw, http.StatusMethodNotAllowed, "POST only")
		return
	}
	w.bump(func(st *WebhookStats) { st.Received++ }, "received")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		httpError(rw, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if len(body) > maxWebhookBody {
		w.bump(func(st *WebhookStats) { st.Invalid++ }, "too_large")
		httpError(rw, http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
		return
	}
	secret := ""
	if s.opts.WebhookSecret != nil {
		secret = s.opts.WebhookSecret()
	}
	if secret == "" {
		httpError(rw, http.StatusServiceUnavailable, "webhook secret not configured")
		return
	}
	now := s.now()
	if err := officernd.VerifySignature(r.Header.Get("officernd-signature"), body, secret, now, s.cfg().Sync.TimestampTolerance); err != nil {
		w.bump(func(st *WebhookStats) { st.BadSignature++ }, "bad_signature")
		s.log.Warn("webhook rejected", "remote", r.RemoteAddr, "err", err)
		httpError(rw, http.StatusUnauthorized, "signature check failed")
		return
	}
	ev, err := officernd.ParseEvent(body)
	if err != nil {
		w.bump(func(st *WebhookStats) { st.Invalid++ }, "invalid")
		s.log.Warn("webhook payload invalid", "err", err)
		httpError(rw, http.StatusBadRequest, err.Error())
		return
	}
	switch w.enqueue(ev, now) {
	case errStoreDown:
		httpError(rw, http.StatusServiceUnavailable, "store unavailable")
	case errDuplicate:
		writeJSON(rw, http.StatusOK, map[string]string{"status": "duplicate"})
	case errBusy:
		httpError(rw, http.StatusServiceUnavailable, "busy, retry later")
	default:
		writeJSON(rw, http.StatusAccepted, map[string]string{"status": "accepted"})
		if s.opts.Relay != nil {
			s.opts.Relay(body) // to the fleet's other boxes (docs/fleet.md)
		}
	}
}

var (
	errStoreDown = errors.New("store unavailable")
	errDuplicate = errors.New("duplicate event")
	errBusy      = errors.New("webhook queue full")
)

// enqueue deduplicates a verified event and queues it for the workers.
func (w *webhookIntake) enqueue(ev officernd.Event, now time.Time) error {
	s := w.s
	w.mu.Lock()
	dup := w.inflight[ev.ID]
	if !dup {
		w.inflight[ev.ID] = true
	}
	w.mu.Unlock()
	if !dup {
		var seen bool
		if err := s.st.View(func(tx *store.Tx) error { var e error; seen, e = tx.SeenEvent(ev.ID); return e }); err != nil {
			w.release(ev.ID)
			return errStoreDown
		}
		if seen {
			w.release(ev.ID)
			dup = true
		}
	}
	if dup {
		w.bump(func(st *WebhookStats) { st.Duplicate++ }, "duplicate")
		return errDuplicate
	}
	q := w.queues[route(ev)%uint32(len(w.queues))]
	select {
	case q <- queued{ev: ev, arrived: now}:
	default:
		w.release(ev.ID)
		return errBusy
	}
	w.bump(func(st *WebhookStats) { st.Accepted++; st.LastAccepted = now }, "accepted")
	return nil
}

// RelayedEvent takes a webhook delivery another box of the fleet verified
// and relayed over the authenticated fleet link: it is deduplicated and
// applied like a local delivery (the entity is re-read from OfficeRnD).
func (s *Syncer) RelayedEvent(from string, body []byte) {
	ev, err := officernd.ParseEvent(body)
	if err != nil {
		s.log.Warn("relayed webhook payload invalid", "from", from, "err", err)
		return
	}
	s.hooks.bump(func(st *WebhookStats) { st.Received++ }, "received")
	if err := s.hooks.enqueue(ev, s.now()); err != nil && !errors.Is(err, errDuplicate) {
		s.log.Warn("relayed webhook not queued", "from", from, "event", ev.ID, "err", err)
	}
}

func (w *webhookIntake) release(id string) {
	w.mu.Lock()
	delete(w.inflight, id)
	w.mu.Unlock()
}

// route picks the worker by the member (or company) an event concerns, so
// one member's events are applied in arrival order.
func route(ev officernd.Event) uint32 {
	var refs struct {
		ID      string `json:"_id"`
		Member  any    `json:"member"`
		Company any    `json:"company"`
		Team    any    `json:"team"`
	}
	_ = json.Unmarshal(ev.Data.Object, &refs)
	key := refs.ID
	for _, v := range []any{refs.Member, refs.Company, refs.Team} {
		if id := refID(v); id != "" && ev.Entity() != "member" && ev.Entity() != "company" {
			key = id
			break
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

func refID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if s, ok := x["_id"].(string); ok {
			return s
		}
	}
	return ""
}

func (w *webhookIntake) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range w.queues {
		wg.Add(1)
		go func(q chan queued) {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-q:
					w.handle(ctx, it)
				}
			}
		}(q)
	}
	wg.Wait()
}

func (w *webhookIntake) handle(ctx context.Context, it queued) {
	s := w.s
	defer w.release(it.ev.ID)
	err := s.applyEvent(ctx, it.ev)
	if err != nil {
		w.bump(func(st *WebhookStats) { st.Failed++ }, "failed")
		s.log.Error("apply webhook event", "event", it.ev.ID, "type", it.ev.Type, "err", err)
		return
	}
	now := s.now()
	s.opts.Metrics.WebhookApplyLat.Observe(now.Sub(it.arrived).Seconds())
	w.bump(func(st *WebhookStats) { st.Applied++; st.LastApplied = now }, "applied")
}

// hookKinds maps an event's entity to how it is re-read and stored.
var hookKinds = map[string]struct {
	kind, resource string
	load           func(ctx context.Context, s *Syncer, ev officernd.Event, resource string) (any, bool, error)
}{
	"member":     {store.KindMember, "members", loader(mapMember)},
	"company":    {store.KindCompany, "companies", loader(mapCompany)},
	"team":       {store.KindCompany, "companies", loader(mapCompany)},
	"membership": {store.KindMembership, "memberships", loader(mapMembership)},
	"plan":       {store.KindPlan, "plans", loader(mapPlan)},
	"location":   {store.KindLocation, "locations", loader(mapLocation)},
	"office":     {store.KindLocation, "locations", loader(mapLocation)},
	"booking":    {store.KindBooking, "bookings", loader(mapBooking)},
	"pass":       {store.KindPass, "passes", loader(mapPass)},
	"visitor":    {store.KindVisitor, "visitors", loader(mapVisitor)},
}

// loader re-reads the entity an event names (an event is a hint, and
// re-reading makes out-of-order and duplicate deliveries converge on
// OfficeRnD's current state). When OfficeRnD cannot be reached the payload
// itself is used. It returns the model value, or removed=true.
func loader[A, M any](mapf func(A) (M, error)) func(context.Context, *Syncer, officernd.Event, string) (any, bool, error) {
	return func(ctx context.Context, s *Syncer, ev officernd.Event, resource string) (any, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		a, err := officernd.Get[A](ctx, s.api, resource, ev.ObjectID())
		switch {
		case err == nil:
			m, err := mapf(a)
			return m, false, err
		case errors.Is(err, officernd.ErrNotFound):
			return nil, true, nil
		case ev.Action() == "removed":
			return nil, true, nil
		case errors.Is(err, officernd.ErrUnreachable), errors.Is(err, officernd.ErrServer), errors.Is(err, officernd.ErrRateLimited):
			s.log.Warn("OfficeRnD unreachable; applying webhook payload as sent", "event", ev.ID, "err", err)
			a, derr := officernd.DecodeObject[A](ev)
			if derr != nil {
				return nil, false, derr
			}
			m, merr := mapf(a)
			return m, false, merr
		default:
			return nil, false, fmt.Errorf("re-read %s %s: %w", resource, ev.ObjectID(), err)
		}
	}
}

func (s *Syncer) applyEvent(ctx context.Context, ev officernd.Event) error {
	if ev.Entity() == "occupancyslot" {
		// An occurrence of a booking was added or taken away: re-read the
		// series' occurrences in the window.
		if series := occurrenceSeries(ev); series != "" {
			if err := s.syncOccurrences(ctx, nil, series, "webhook"); err != nil {
				return err
			}
		}
		return s.st.Update(func(tx *store.Tx) error { return tx.MarkEvent(ev.ID, s.now()) })
	}
	hk, ok := hookKinds[ev.Entity()]
	if !ok {
		// Events deskgate does not act on (invoices, tickets, …) are
		// remembered so a redelivery is not looked at twice.
		s.hooks.bump(func(st *WebhookStats) { st.Ignored++ }, "ignored")
		return s.st.Update(func(tx *store.Tx) error { return tx.MarkEvent(ev.ID, s.now()) })
	}
	v, removed, err := hk.load(ctx, s, ev, hk.resource)
	if err != nil {
		return err
	}
	// OfficeRnD sends no visitor events: a booking naming visitors deskgate
	// has not seen yet brings them along, so their codes can be delivered.
	var extra []any
	if bk, ok := v.(model.Booking); ok {
		extra = s.missingVisitors(ctx, bk)
	}
	how := "changed (webhook " + ev.Type + ")"
	if err := s.apply(nil, "webhook", func(tx *store.Tx, b *batch) error {
		for _, x := range extra {
			if err := s.put(tx, b, x, "fetched for booking "+ev.ObjectID()); err != nil {
				return err
			}
		}
		if removed {
			if err := s.remove(tx, b, hk.kind, ev.ObjectID(), "removed (webhook "+ev.Type+")"); err != nil {
				return err
			}
		} else {
			if stale, err := isStale(tx, v); err != nil || stale {
				if stale {
					s.log.Info("webhook payload older than stored record; ignored", "event", ev.ID)
				}
				if err != nil {
					return err
				}
				return tx.MarkEvent(ev.ID, s.now())
			}
			if err := s.put(tx, b, v, how); err != nil {
				return err
			}
		}
		return tx.MarkEvent(ev.ID, s.now())
	}); err != nil {
		return err
	}
	// A recurring series (or one that stopped recurring, or was removed):
	// its occurrences follow it.
	if hk.kind == store.KindBooking {
		if bk, ok := v.(model.Booking); removed || (ok && bk.Recurring) || s.hasOccurrences(ev.ObjectID()) {
			return s.syncOccurrences(ctx, nil, ev.ObjectID(), "webhook")
		}
	}
	return nil
}

// hasOccurrences reports whether occurrences of series are stored.
func (s *Syncer) hasOccurrences(series string) bool {
	found := false
	_ = s.st.View(func(tx *store.Tx) error {
		return tx.ForEachBooking(func(b model.Booking) error {
			if b.Series == series {
				found = true
				return errStopIter
			}
			return nil
		})
	})
	return found
}

// isStale reports whether the stored copy of v is newer than v (only
// payload fallbacks can be older than what we have).
func isStale(tx *store.Tx, v any) (bool, error) {
	var have, got time.Time
	var err error
	switch x := v.(type) {
	case model.Member:
		var o model.Member
		o, err = tx.GetMember(x.ID)
		have, got = o.ModifiedAt, x.ModifiedAt
	case model.Membership:
		var o model.Membership
		o, err = tx.GetMembership(x.ID)
		have, got = o.ModifiedAt, x.ModifiedAt
	case model.Company:
		var o model.Company
		o, err = tx.GetCompany(x.ID)
		have, got = o.ModifiedAt, x.ModifiedAt
	case model.Pass:
		var o model.Pass
		o, err = tx.GetPass(x.ID)
		have, got = o.ModifiedAt, x.ModifiedAt
	case model.Booking:
		var o model.Booking
		o, err = tx.GetBooking(x.ID)
		have, got = o.ModifiedAt, x.ModifiedAt
	default:
		return false, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !got.IsZero() && have.After(got), nil
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// missingVisitors reads the visitors a booking names that the store lacks.
// A visitor that cannot be read now is left for the next full pass.
func (s *Syncer) missingVisitors(ctx context.Context, bk model.Booking) []any {
	var missing []string
	_ = s.st.View(func(tx *store.Tx) error {
		for _, id := range bk.Visitors {
			if _, err := tx.GetVisitor(id); errors.Is(err, store.ErrNotFound) {
				missing = append(missing, id)
			}
		}
		return nil
	})
	var out []any
	for _, id := range missing {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		v, err := officernd.Get[officernd.Visitor](ctx, s.api, "visitors", id)
		cancel()
		if err != nil {
			s.log.Warn("read visitor of booking", "booking", bk.ID, "visitor", id, "err", err)
			continue
		}
		if m, err := mapVisitor(v); err == nil {
			out = append(out, m)
		}
	}
	return out
}
