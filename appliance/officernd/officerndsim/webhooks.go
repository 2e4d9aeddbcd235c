package officerndsim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// maxEvents is how many recent events Events keeps.
const maxEvents = 2000

// envelope is a webhook delivery body, in the real key order.
type envelope struct {
	Event     string       `json:"event"`
	EventType string       `json:"eventType"`
	Data      envelopeData `json:"data"`
	CreatedAt string       `json:"createdAt"`
}

type envelopeData struct {
	Object             doc `json:"object"`
	PreviousAttributes doc `json:"previousAttributes,omitempty"`
}

// delivery is one queued POST of an event to one webhook.
type delivery struct {
	url, secret string
	webhook     string
	body        []byte
}

// payload renders a record as webhook payloads carry it: v1 names for
// some fields (unless Options.V2Payloads) and no empty properties.
func (s *Sim) payload(name string, d doc) doc {
	if d == nil {
		return nil
	}
	out := maps.Clone(d)
	if p, ok := out["properties"].(map[string]any); ok && len(p) == 0 {
		delete(out, "properties")
	}
	if s.v1 {
		for v2, v1 := range resources[name].v1 {
			if v, ok := out[v2]; ok {
				delete(out, v2)
				out[v1] = v
			}
		}
	}
	return out
}

// v1Member gives a member payload the v1 status pair: calculatedStatus is
// the live status, status the stored one, which in v1 lags behind (here:
// the value before this change).
func v1Member(obj, prev doc) {
	st, ok := obj["status"]
	if !ok {
		return
	}
	obj["calculatedStatus"] = st
	if old, changed := prev["status"]; changed && old != nil {
		obj["status"] = old
	}
}

// emit records an event for a write to collection name and queues its
// deliveries. verb is created, updated or removed; prev holds the old
// values of changed fields on updates. Callers hold s.mu.
func (s *Sim) emit(name, verb string, d, prev doc) {
	res := resources[name]
	if res.event == "" {
		return
	}
	obj := s.payload(name, s.view(name, d, nil))
	prevP := s.payload(name, prev)
	if s.v1 && name == "members" {
		v1Member(obj, prev)
	}
	if verb == "updated" && prevP == nil {
		prevP = doc{}
	}
	s.emitEvent(res.event+"."+verb, obj, prevP)
}

// emitEvent records an event of type eventType carrying obj (and prev)
// and queues its deliveries. Callers hold s.mu.
func (s *Sim) emitEvent(eventType string, obj, prev doc) {
	now := s.nowLocked()
	env := envelope{
		Event:     randomHex(12),
		EventType: eventType,
		Data:      envelopeData{Object: obj, PreviousAttributes: prev},
		CreatedAt: iso(now),
	}
	body, err := json.Marshal(env)
	if err != nil {
		s.log.Error("marshal webhook event", "type", env.EventType, "err", err)
		return
	}
	ev, err := officernd.ParseEvent(body)
	if err != nil {
		ev = officernd.Event{ID: env.Event, Type: env.EventType, CreatedAt: now}
	}
	s.events = append(s.events, ev)
	if len(s.events) > maxEvents {
		s.events = slices.Delete(s.events, 0, len(s.events)-maxEvents)
	}
	s.stats.Events++
	hooks := s.cols["webhooks"]
	for _, id := range hooks.ids {
		h := hooks.docs[id]
		if h["isEnabled"] != true || !subscribed(h, env.EventType) {
			continue
		}
		if s.faults.DropWebhooks {
			s.stats.WebhooksDropped++
			continue
		}
		s.queue = append(s.queue, delivery{url: str(h["url"]), secret: str(h["secret"]), webhook: id, body: body})
	}
	if len(s.queue) > 0 && !s.working {
		s.working = true
		s.idle = make(chan struct{})
		go s.deliverLoop()
	}
}

func subscribed(h doc, eventType string) bool {
	types := values(h["eventTypes"])
	return len(types) == 0 || slices.Contains(types, eventType)
}

// deliverLoop drains the queue in order, then exits; emit starts it again.
func (s *Sim) deliverLoop() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.working = false
			close(s.idle)
			s.mu.Unlock()
			return
		}
		d := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		ok := s.deliver(d)
		s.mu.Lock()
		if ok {
			s.stats.WebhooksDelivered++
		} else {
			s.stats.WebhooksFailed++
		}
		s.mu.Unlock()
	}
}

// deliver POSTs one event, retrying once after a failure.
func (s *Sim) deliver(d delivery) bool {
	for attempt := range 2 {
		if attempt > 0 {
			time.Sleep(s.opts.RetryDelay)
		}
		err := s.post(d)
		if err == nil {
			return true
		}
		s.log.Warn("webhook delivery failed", "webhook", d.webhook, "url", d.url, "attempt", attempt+1, "err", err)
	}
	return false
}

type statusError int

func (e statusError) Error() string { return "status " + http.StatusText(int(e)) }

func (s *Sim) post(d delivery) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "OfficeRnD-Webhooks")
	req.Header.Set(officernd.SignatureHeader, officernd.Sign(d.secret, d.body, s.now()))
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(resp.StatusCode)
	}
	return nil
}

// Events returns the recent webhook events (up to 2000, oldest first),
// delivered or not, as officernd.Event values.
func (s *Sim) Events() []officernd.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}
