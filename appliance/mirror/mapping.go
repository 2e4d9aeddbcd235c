package mirror

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/officernd"
)

// The functions below map the API's shapes onto the domain model. They
// reject records that cannot be stored meaningfully (no id, a date that is
// not a date) so bad API data changes nothing.

func mapMember(m officernd.Member) (model.Member, error) {
	if m.ID == "" {
		return model.Member{}, fmt.Errorf("member without _id")
	}
	start, err := model.ParseDate(m.StartDate)
	if err != nil {
		return model.Member{}, fmt.Errorf("member %s: startDate: %w", m.ID, err)
	}
	return model.Member{
		ID:         m.ID,
		Name:       strings.TrimSpace(m.Name),
		Email:      strings.TrimSpace(m.Email),
		Phone:      m.Phone,
		Location:   m.Location,
		Company:    m.Company,
		Status:     m.Status,
		StartDate:  start,
		Properties: stringProps(m.Properties),
		CreatedAt:  m.CreatedAt,
		ModifiedAt: m.ModifiedAt,
	}, nil
}

func mapCompany(c officernd.Company) (model.Company, error) {
	if c.ID == "" {
		return model.Company{}, fmt.Errorf("company without _id")
	}
	return model.Company{ID: c.ID, Name: c.Name, Email: c.Email, Location: c.Location, Status: c.Status, ModifiedAt: c.ModifiedAt}, nil
}

func mapMembership(m officernd.Membership) (model.Membership, error) {
	if m.ID == "" {
		return model.Membership{}, fmt.Errorf("membership without _id")
	}
	start, err := model.ParseDate(m.StartDate)
	if err != nil {
		return model.Membership{}, fmt.Errorf("membership %s: startDate: %w", m.ID, err)
	}
	end, err := model.ParseDate(m.EndDate)
	if err != nil {
		return model.Membership{}, fmt.Errorf("membership %s: endDate: %w", m.ID, err)
	}
	if m.Plan == "" {
		return model.Membership{}, fmt.Errorf("membership %s: no plan", m.ID)
	}
	out := model.Membership{
		ID:               m.ID,
		Name:             m.Name,
		Member:           m.Member,
		Company:          m.Company,
		IsPersonal:       m.IsPersonal,
		Plan:             m.Plan,
		Location:         m.Location,
		Status:           m.Status,
		CalculatedStatus: m.CalculatedStatus,
		StartDate:        start,
		EndDate:          end,
		ModifiedAt:       m.ModifiedAt,
	}
	// A membership that names a member but is not flagged personal still
	// belongs to that member (v1 payloads omit isPersonal).
	if out.Member != "" && out.Company == "" {
		out.IsPersonal = true
	}
	if paid, ok := m.Properties["firstInvoicePaid"].(bool); ok {
		out.FirstInvoicePaid = &paid
	}
	return out, nil
}

func mapPlan(p officernd.Plan) (model.Plan, error) {
	if p.ID == "" {
		return model.Plan{}, fmt.Errorf("plan without _id")
	}
	return model.Plan{ID: p.ID, Name: strings.TrimSpace(p.Name), Code: p.Code, Type: p.Type, Locations: p.Locations, ModifiedAt: p.ModifiedAt}, nil
}

func mapLocation(l officernd.Location) (model.Location, error) {
	if l.ID == "" {
		return model.Location{}, fmt.Errorf("location without _id")
	}
	if l.Timezone != "" {
		if _, err := time.LoadLocation(l.Timezone); err != nil {
			return model.Location{}, fmt.Errorf("location %s: timezone %q: %w", l.ID, l.Timezone, err)
		}
	}
	return model.Location{ID: l.ID, Name: strings.TrimSpace(l.Name), Code: l.Code, Timezone: l.Timezone}, nil
}

func mapResource(r officernd.Resource) (model.Resource, error) {
	if r.ID == "" {
		return model.Resource{}, fmt.Errorf("resource without _id")
	}
	return model.Resource{ID: r.ID, Name: r.Name, Type: r.Type, Location: r.Location, Size: r.Size}, nil
}

func mapBooking(b officernd.Booking) (model.Booking, error) {
	if b.ID == "" {
		return model.Booking{}, fmt.Errorf("booking without _id")
	}
	if !b.Start.IsZero() && !b.End.IsZero() && b.End.Before(b.Start) {
		return model.Booking{}, fmt.Errorf("booking %s: end %s before start %s", b.ID, b.End, b.Start)
	}
	return model.Booking{
		ID: b.ID, Title: b.Title, Resource: b.Resource, Location: b.Location, Member: b.Member,
		Company: b.Company, Start: b.Start, End: b.End, Timezone: b.Timezone,
		Visitors: b.Visitors, Members: b.Members, IsCancelled: b.IsCancelled, ModifiedAt: b.ModifiedAt,
		Recurring: b.Recurrence != nil && b.Recurrence.RRule != "",
	}, nil
}

// occurrenceID is the store id of one occurrence of a recurring booking:
// the series id and the occurrence's start (the API's own occurrence id is
// not documented).
func occurrenceID(series string, start time.Time) string {
	return series + "@" + start.UTC().Format("20060102T150405Z")
}

// mapOccurrence maps one occurrence of a recurring booking; ok is false
// for occurrences of one-off bookings (the booking itself stands for them).
func mapOccurrence(o officernd.Occurrence) (m model.Booking, ok bool, err error) {
	if o.Recurrence == nil || o.Recurrence.RRule == "" {
		return model.Booking{}, false, nil
	}
	if o.Series == "" || o.Start.IsZero() || o.End.IsZero() {
		return model.Booking{}, false, fmt.Errorf("occurrence %s: no booking, start or end", o.ID)
	}
	o.Booking.ID = occurrenceID(o.Series, o.Start)
	m, err = mapBooking(o.Booking)
	if err != nil {
		return model.Booking{}, false, err
	}
	m.Recurring, m.Series = false, o.Series
	return m, true, nil
}

func mapVisitor(v officernd.Visitor) (model.Visitor, error) {
	if v.ID == "" {
		return model.Visitor{}, fmt.Errorf("visitor without _id")
	}
	return model.Visitor{ID: v.ID, Name: v.Name, Email: v.Email, Phone: v.Phone, Member: v.Member, Company: v.Company}, nil
}

func mapPass(p officernd.Pass) (model.Pass, error) {
	if p.ID == "" {
		return model.Pass{}, fmt.Errorf("pass without _id")
	}
	start, err := model.ParseDate(p.StartDate)
	if err != nil {
		return model.Pass{}, fmt.Errorf("pass %s: startDate: %w", p.ID, err)
	}
	end, err := model.ParseDate(p.EndDate)
	if err != nil {
		return model.Pass{}, fmt.Errorf("pass %s: endDate: %w", p.ID, err)
	}
	out := model.Pass{
		ID: p.ID, Member: p.Member, Company: p.Company, IsPersonal: p.IsPersonal, Membership: p.Membership,
		Count: p.Count, UsedCount: p.UsedCount, Status: p.Status, StartDate: start, EndDate: end,
		ModifiedAt: p.ModifiedAt,
	}
	if out.ValidFrom, err = parseInstant(p.ValidFrom); err != nil {
		return model.Pass{}, fmt.Errorf("pass %s: validFrom: %w", p.ID, err)
	}
	if out.ValidTo, err = parseInstant(p.ValidTo); err != nil {
		return model.Pass{}, fmt.Errorf("pass %s: validTo: %w", p.ID, err)
	}
	if loc, ok := p.Properties["location"].(string); ok {
		out.Location = loc
	}
	return out, nil
}

func parseInstant(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", s)
}

// stringProps keeps the custom properties that are strings (the only kind
// deskgate reads, e.g. wifiPassword), sorted for stable storage.
func stringProps(p map[string]any) map[string]string {
	if len(p) == 0 {
		return nil
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(p))
	for _, k := range keys {
		switch v := p[k].(type) {
		case string:
			out[k] = v
		case bool, float64:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
