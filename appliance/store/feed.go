package store

// Change kinds.
const (
	KindMember     = "member"
	KindCompany    = "company"
	KindMembership = "membership"
	KindPlan       = "plan"
	KindLocation   = "location"
	KindResource   = "resource"
	KindBooking    = "booking"
	KindVisitor    = "visitor"
	KindPass       = "pass"
	KindAccount    = "account"
	// KindResync tells a subscriber that changes were dropped because it
	// fell behind; it should rescan whatever it derives from the store.
	KindResync = "resync"
)

// Change is one committed write, a hint to re-read the record.
type Change struct {
	Kind    string
	ID      string
	Deleted bool
	// Member is the member whose access may be affected, "" if none or
	// unknown (a company change affects all of its members).
	Member string
}

type subscriber struct {
	ch chan Change
}

// Subscribe returns a feed of changes committed from now on and a cancel
// function that closes it. Publishing never blocks: when the buffer (at
// least 1) is full, the pending changes are dropped and a single
// Change{Kind: KindResync} is queued in their place.
func (s *Store) Subscribe(buf int) (<-chan Change, func()) {
	if buf < 1 {
		buf = 1
	}
	sub := &subscriber{ch: make(chan Change, buf)}
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	return sub.ch, func() {
		s.smu.Lock()
		defer s.smu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// ChangeSeq counts the changes committed so far (those the feed
// publishes). It moves after a commit and before subscribers hear of the
// change, so a reader that keeps something derived from the store can
// note the count before its read and know its copy may be stale as soon
// as the count differs: synchronously, with no wait for the feed.
func (s *Store) ChangeSeq() uint64 { return s.changeSeq.Load() }

func (s *Store) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	s.changeSeq.Add(uint64(len(changes)))
	s.smu.Lock()
	defer s.smu.Unlock()
	for sub := range s.subs {
		for _, c := range changes {
			if !sub.send(c) {
				break
			}
		}
	}
}

// send queues c; when the buffer is full it drops what is pending, queues
// a resync marker and reports false (the rest of this batch is covered).
func (sub *subscriber) send(c Change) bool {
	select {
	case sub.ch <- c:
		return true
	default:
	}
	for {
		select {
		case <-sub.ch:
			continue
		default:
		}
		break
	}
	select {
	case sub.ch <- Change{Kind: KindResync}:
	default: // the reader cannot have refilled it; smu serialises senders
	}
	return false
}
