package officernd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Query narrows a list call.
type Query struct {
	// ModifiedSince, when set, sends modifiedAt[$gt]. If the endpoint
	// rejects the filter ("should not exist"), the client remembers that and
	// lists everything instead (ListResult.FullScan).
	ModifiedSince time.Time
	// Filters are sent as given (field=value, field[$in]=a,b, ...). List
	// endpoints reject unknown parameters with 400.
	Filters url.Values
	// Limit is the page size, at most MaxLimit (the default).
	Limit int
	// NoFullScan makes an endpoint that rejects the ModifiedSince filter
	// an error (ErrModifiedUnsupported) instead of a complete listing, for
	// callers that have a cheaper way to find the changes.
	NoFullScan bool
}

// ErrModifiedUnsupported: the endpoint rejects the modifiedAt filter and
// the Query asked for no full scan.
var ErrModifiedUnsupported = errors.New("officernd: endpoint rejects the modifiedAt filter")

// ListResult describes a completed list call.
type ListResult struct {
	Pages    int
	Items    int
	FullScan bool // ModifiedSince was set but the endpoint ignored/rejected it
}

// timeFilterFormat is how date filters are written (ISO-8601 UTC, ms).
const timeFilterFormat = "2006-01-02T15:04:05.000Z"

// List calls fn with each page of resource, following cursorNext until
// the API stops returning one. fn's error stops the listing and is
// returned as is.
func List[T any](ctx context.Context, c *Client, resource string, q Query, fn func(page []T) error) error {
	_, err := ListWithResult(ctx, c, resource, q, fn)
	return err
}

// ListWithResult is List that also reports pages, items and whether an
// incremental query fell back to a full scan.
func ListWithResult[T any](ctx context.Context, c *Client, resource string, q Query, fn func(page []T) error) (ListResult, error) {
	var res ListResult
	limit := q.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	incremental := !q.ModifiedSince.IsZero()
	if incremental && c.modifiedUnsupported(resource) {
		if q.NoFullScan {
			return res, fmt.Errorf("list %s: %w", resource, ErrModifiedUnsupported)
		}
		incremental = false
		res.FullScan = true
	}
	cursor := ""
	seen := map[string]bool{}
	for {
		v := url.Values{}
		for k, vs := range q.Filters {
			v[k] = append([]string(nil), vs...)
		}
		v.Set("$limit", strconv.Itoa(limit))
		if incremental {
			v.Set("modifiedAt[$gt]", q.ModifiedSince.UTC().Format(timeFilterFormat))
		}
		if cursor != "" {
			v.Set("$cursorNext", cursor)
		}
		var page ListPage[T]
		err := c.do(ctx, http.MethodGet, resource, resource+"?"+v.Encode(), nil, &page)
		if err != nil && incremental && res.Pages == 0 && rejectsModified(err) {
			c.log.Info("officernd endpoint rejects modifiedAt filter, falling back to full scans", "resource", resource)
			c.setModifiedUnsupported(resource)
			if q.NoFullScan {
				return res, fmt.Errorf("list %s: %w", resource, ErrModifiedUnsupported)
			}
			incremental = false
			res.FullScan = true
			continue
		}
		if err != nil {
			return res, fmt.Errorf("list %s: %w", resource, err)
		}
		res.Pages++
		res.Items += len(page.Results)
		if len(page.Results) > 0 || res.Pages == 1 {
			if err := fn(page.Results); err != nil {
				return res, err
			}
		}
		if page.CursorNext == "" {
			return res, nil
		}
		if seen[page.CursorNext] {
			return res, fmt.Errorf("list %s: cursor %q repeated after %d pages", resource, page.CursorNext, res.Pages)
		}
		seen[page.CursorNext] = true
		cursor = page.CursorNext
	}
}

// ListAll collects every item of resource.
func ListAll[T any](ctx context.Context, c *Client, resource string, q Query) ([]T, ListResult, error) {
	var all []T
	res, err := ListWithResult(ctx, c, resource, q, func(p []T) error {
		all = append(all, p...)
		return nil
	})
	return all, res, err
}

// rejectsModified reports a 400 saying the modifiedAt filter is not allowed.
func rejectsModified(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		return false
	}
	m := strings.ToLower(ae.Message)
	return strings.Contains(m, "should not exist") && strings.Contains(m, "modifiedat")
}

func (c *Client) modifiedUnsupported(resource string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noModified[resource]
}

func (c *Client) setModifiedUnsupported(resource string) {
	c.mu.Lock()
	c.noModified[resource] = true
	c.mu.Unlock()
}

func itemPath(resource, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("officernd: %s: empty id", resource)
	}
	return resource + "/" + url.PathEscape(id), nil
}

// Get fetches one item of resource by id. A missing item is ErrNotFound.
func Get[T any](ctx context.Context, c *Client, resource, id string) (T, error) {
	var out T
	p, err := itemPath(resource, id)
	if err != nil {
		return out, err
	}
	if err := c.do(ctx, http.MethodGet, resource, p, nil, &out); err != nil {
		return out, fmt.Errorf("get %s %s: %w", resource, id, err)
	}
	return out, nil
}

// Count returns GET /{resource}/count with the given filters.
func Count(ctx context.Context, c *Client, resource string, filters url.Values) (int, error) {
	var out CountResult
	p := resource + "/count"
	if len(filters) > 0 {
		p += "?" + filters.Encode()
	}
	if err := c.do(ctx, http.MethodGet, resource, p, nil, &out); err != nil {
		return 0, fmt.Errorf("count %s: %w", resource, err)
	}
	return out.Total, nil
}

// Create POSTs body to resource and decodes the created item.
func Create[T any](ctx context.Context, c *Client, resource string, body any) (T, error) {
	var out T
	if err := c.do(ctx, http.MethodPost, resource, resource, body, &out); err != nil {
		return out, fmt.Errorf("create %s: %w", resource, err)
	}
	return out, nil
}

// UpdateMethod is the HTTP method v2 uses to update items of resource:
// PUT for memberships and passes, PATCH otherwise.
func UpdateMethod(resource string) string {
	switch resource {
	case ResMemberships, ResPasses:
		return http.MethodPut
	}
	return http.MethodPatch
}

// Update sends body (the changed fields) to resource/id with
// UpdateMethod(resource) and decodes the updated item.
func Update[T any](ctx context.Context, c *Client, resource, id string, body any) (T, error) {
	var out T
	p, err := itemPath(resource, id)
	if err != nil {
		return out, err
	}
	if err := c.do(ctx, UpdateMethod(resource), resource, p, body, &out); err != nil {
		return out, fmt.Errorf("update %s %s: %w", resource, id, err)
	}
	return out, nil
}

// Delete removes resource/id. The API answers with the deleted object,
// which is discarded.
func Delete(ctx context.Context, c *Client, resource, id string) error {
	p, err := itemPath(resource, id)
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, resource, p, nil, nil); err != nil {
		return fmt.Errorf("delete %s %s: %w", resource, id, err)
	}
	return nil
}

// ---- typed conveniences ----

// Members lists members (incrementally when q.ModifiedSince is set).
func (c *Client) Members(ctx context.Context, q Query) ([]Member, ListResult, error) {
	return ListAll[Member](ctx, c, ResMembers, q)
}

// Companies lists companies.
func (c *Client) Companies(ctx context.Context, q Query) ([]Company, ListResult, error) {
	return ListAll[Company](ctx, c, ResCompanies, q)
}

// Memberships lists memberships; an incremental query may fall back to a
// full scan (see ListResult.FullScan).
func (c *Client) Memberships(ctx context.Context, q Query) ([]Membership, ListResult, error) {
	return ListAll[Membership](ctx, c, ResMemberships, q)
}

// Plans lists plans.
func (c *Client) Plans(ctx context.Context, q Query) ([]Plan, ListResult, error) {
	return ListAll[Plan](ctx, c, ResPlans, q)
}

// Locations lists locations.
func (c *Client) Locations(ctx context.Context, q Query) ([]Location, ListResult, error) {
	return ListAll[Location](ctx, c, ResLocations, q)
}

// Resources lists resources (rooms, desks).
func (c *Client) Resources(ctx context.Context, q Query) ([]Resource, ListResult, error) {
	return ListAll[Resource](ctx, c, ResResources, q)
}

// Bookings lists bookings.
func (c *Client) Bookings(ctx context.Context, q Query) ([]Booking, ListResult, error) {
	return ListAll[Booking](ctx, c, ResBookings, q)
}

// Occurrences lists the occurrences of bookings overlapping [from, to)
// (GET /bookings/occurrences?start=&end=), narrowed by filters such as
// booking=<id>. GET /bookings returns a recurring series once (its first
// occurrence); this is where its later occurrences come from.
func (c *Client) Occurrences(ctx context.Context, from, to time.Time, filters url.Values) ([]Occurrence, error) {
	v := url.Values{}
	for k, vs := range filters {
		v[k] = append([]string(nil), vs...)
	}
	v.Set("start", from.UTC().Format(timeFilterFormat))
	v.Set("end", to.UTC().Format(timeFilterFormat))
	var out []Occurrence
	seen := map[string]bool{}
	for {
		var page ListPage[Occurrence]
		p := ResBookings + "/occurrences?" + v.Encode()
		if err := c.do(ctx, http.MethodGet, ResBookings, p, nil, &page); err != nil {
			return nil, fmt.Errorf("list booking occurrences: %w", err)
		}
		out = append(out, page.Results...)
		if page.CursorNext == "" {
			return out, nil
		}
		if seen[page.CursorNext] {
			return nil, fmt.Errorf("list booking occurrences: cursor %q repeated", page.CursorNext)
		}
		seen[page.CursorNext] = true
		v.Set("$cursorNext", page.CursorNext)
	}
}

// Visitors lists visitors.
func (c *Client) Visitors(ctx context.Context, q Query) ([]Visitor, ListResult, error) {
	return ListAll[Visitor](ctx, c, ResVisitors, q)
}

// Passes lists day-pass sets.
func (c *Client) Passes(ctx context.Context, q Query) ([]Pass, ListResult, error) {
	return ListAll[Pass](ctx, c, ResPasses, q)
}

// Member fetches one member.
func (c *Client) Member(ctx context.Context, id string) (Member, error) {
	return Get[Member](ctx, c, ResMembers, id)
}

// Membership fetches one membership.
func (c *Client) Membership(ctx context.Context, id string) (Membership, error) {
	return Get[Membership](ctx, c, ResMemberships, id)
}

// Booking fetches one booking.
func (c *Client) Booking(ctx context.Context, id string) (Booking, error) {
	return Get[Booking](ctx, c, ResBookings, id)
}

// ---- webhooks ----

type webhookCreate struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"eventTypes"`
	Description string   `json:"description,omitempty"`
}

// RegisterWebhook creates a webhook. The returned Webhook.Secret verifies
// deliveries (VerifySignature); store it and never log it.
func (c *Client) RegisterWebhook(ctx context.Context, url string, eventTypes []string, description string) (Webhook, error) {
	if url == "" || len(eventTypes) == 0 {
		return Webhook{}, errors.New("officernd: register webhook: url and event types are required")
	}
	return Create[Webhook](ctx, c, ResWebhooks, webhookCreate{URL: url, EventTypes: eventTypes, Description: description})
}

// ListWebhooks returns the organization's webhooks.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	w, _, err := ListAll[Webhook](ctx, c, ResWebhooks, Query{})
	return w, err
}

// DeleteWebhook removes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return Delete(ctx, c, ResWebhooks, id)
}
