package store

// Per-entity accessors. Each Put replaces the whole record, maintains its
// indexes and records a Change, unless the value is unchanged; each Delete
// of an absent id is a no-op.

import (
	"fmt"

	"github.com/deskgate/deskgate/appliance/model"
)

// GetMember returns the member with id, or ErrNotFound.
func (tx *Tx) GetMember(id string) (model.Member, error) { return get(tx, memberEntity, id) }

// PutMember inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutMember(v model.Member) error { return put(tx, memberEntity, v) }

// DeleteMember removes the member with id; an absent id is not an error.
func (tx *Tx) DeleteMember(id string) error { return del(tx, memberEntity, id) }

// ForEachMember calls fn for every member in id order, stopping at its first
// error. fn must not write members; collect and write after it returns.
func (tx *Tx) ForEachMember(fn func(model.Member) error) error { return forEach(tx, memberEntity, fn) }

// GetCompany returns the company with id, or ErrNotFound.
func (tx *Tx) GetCompany(id string) (model.Company, error) { return get(tx, companyEntity, id) }

// PutCompany inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutCompany(v model.Company) error { return put(tx, companyEntity, v) }

// DeleteCompany removes the company with id; an absent id is not an error.
func (tx *Tx) DeleteCompany(id string) error { return del(tx, companyEntity, id) }

// ForEachCompany calls fn for every company in id order, stopping at its first
// error. fn must not write companies; collect and write after it returns.
func (tx *Tx) ForEachCompany(fn func(model.Company) error) error {
	return forEach(tx, companyEntity, fn)
}

// GetMembership returns the membership with id, or ErrNotFound.
func (tx *Tx) GetMembership(id string) (model.Membership, error) {
	return get(tx, membershipEntity, id)
}

// PutMembership inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutMembership(v model.Membership) error { return put(tx, membershipEntity, v) }

// DeleteMembership removes the membership with id; an absent id is not an error.
func (tx *Tx) DeleteMembership(id string) error { return del(tx, membershipEntity, id) }

// ForEachMembership calls fn for every membership in id order, stopping at its first
// error. fn must not write memberships; collect and write after it returns.
func (tx *Tx) ForEachMembership(fn func(model.Membership) error) error {
	return forEach(tx, membershipEntity, fn)
}

// GetPlan returns the plan with id, or ErrNotFound.
func (tx *Tx) GetPlan(id string) (model.Plan, error) { return get(tx, planEntity, id) }

// PutPlan inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutPlan(v model.Plan) error { return put(tx, planEntity, v) }

// DeletePlan removes the plan with id; an absent id is not an error.
func (tx *Tx) DeletePlan(id string) error { return del(tx, planEntity, id) }

// ForEachPlan calls fn for every plan in id order, stopping at its first
// error. fn must not write plans; collect and write after it returns.
func (tx *Tx) ForEachPlan(fn func(model.Plan) error) error { return forEach(tx, planEntity, fn) }

// GetLocation returns the location with id, or ErrNotFound.
func (tx *Tx) GetLocation(id string) (model.Location, error) { return get(tx, locationEntity, id) }

// PutLocation inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutLocation(v model.Location) error { return put(tx, locationEntity, v) }

// DeleteLocation removes the location with id; an absent id is not an error.
func (tx *Tx) DeleteLocation(id string) error { return del(tx, locationEntity, id) }

// ForEachLocation calls fn for every location in id order, stopping at its first
// error. fn must not write locations; collect and write after it returns.
func (tx *Tx) ForEachLocation(fn func(model.Location) error) error {
	return forEach(tx, locationEntity, fn)
}

// GetResource returns the resource with id, or ErrNotFound.
func (tx *Tx) GetResource(id string) (model.Resource, error) { return get(tx, resourceEntity, id) }

// PutResource inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutResource(v model.Resource) error { return put(tx, resourceEntity, v) }

// DeleteResource removes the resource with id; an absent id is not an error.
func (tx *Tx) DeleteResource(id string) error { return del(tx, resourceEntity, id) }

// ForEachResource calls fn for every resource in id order, stopping at its first
// error. fn must not write resources; collect and write after it returns.
func (tx *Tx) ForEachResource(fn func(model.Resource) error) error {
	return forEach(tx, resourceEntity, fn)
}

// GetBooking returns the booking with id, or ErrNotFound.
func (tx *Tx) GetBooking(id string) (model.Booking, error) { return get(tx, bookingEntity, id) }

// PutBooking inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutBooking(v model.Booking) error { return put(tx, bookingEntity, v) }

// DeleteBooking removes the booking with id; an absent id is not an error.
func (tx *Tx) DeleteBooking(id string) error { return del(tx, bookingEntity, id) }

// ForEachBooking calls fn for every booking in id order, stopping at its first
// error. fn must not write bookings; collect and write after it returns.
func (tx *Tx) ForEachBooking(fn func(model.Booking) error) error {
	return forEach(tx, bookingEntity, fn)
}

// GetVisitor returns the visitor with id, or ErrNotFound.
func (tx *Tx) GetVisitor(id string) (model.Visitor, error) { return get(tx, visitorEntity, id) }

// PutVisitor inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutVisitor(v model.Visitor) error { return put(tx, visitorEntity, v) }

// DeleteVisitor removes the visitor with id; an absent id is not an error.
func (tx *Tx) DeleteVisitor(id string) error { return del(tx, visitorEntity, id) }

// ForEachVisitor calls fn for every visitor in id order, stopping at its first
// error. fn must not write visitors; collect and write after it returns.
func (tx *Tx) ForEachVisitor(fn func(model.Visitor) error) error {
	return forEach(tx, visitorEntity, fn)
}

// GetPass returns the pass with id, or ErrNotFound.
func (tx *Tx) GetPass(id string) (model.Pass, error) { return get(tx, passEntity, id) }

// PutPass inserts or replaces v. Writing the stored value again is a no-op
// that records no Change.
func (tx *Tx) PutPass(v model.Pass) error { return put(tx, passEntity, v) }

// DeletePass removes the pass with id; an absent id is not an error.
func (tx *Tx) DeletePass(id string) error { return del(tx, passEntity, id) }

// ForEachPass calls fn for every pass in id order, stopping at its first
// error. fn must not write passes; collect and write after it returns.
func (tx *Tx) ForEachPass(fn func(model.Pass) error) error { return forEach(tx, passEntity, fn) }

// MembershipsOfMember returns the memberships whose Member is memberID.
func (tx *Tx) MembershipsOfMember(memberID string) ([]model.Membership, error) {
	return lookup(tx, membershipEntity, idxMembershipMember, memberID)
}

// MembershipsOfCompany returns the memberships whose Company is companyID.
func (tx *Tx) MembershipsOfCompany(companyID string) ([]model.Membership, error) {
	return lookup(tx, membershipEntity, idxMembershipCompany, companyID)
}

// MembersOfCompany returns the members whose Company is companyID.
func (tx *Tx) MembersOfCompany(companyID string) ([]model.Member, error) {
	return lookup(tx, memberEntity, idxMemberCompany, companyID)
}

// PassesOfMember returns the passes whose Member is memberID.
func (tx *Tx) PassesOfMember(memberID string) ([]model.Pass, error) {
	return lookup(tx, passEntity, idxPassMember, memberID)
}

// PassesOfCompany returns the passes whose Company is companyID.
func (tx *Tx) PassesOfCompany(companyID string) ([]model.Pass, error) {
	return lookup(tx, passEntity, idxPassCompany, companyID)
}

// MemberByEmail returns the member with email, compared case-insensitively
// and ignoring surrounding space. If several members share the address the
// one with the smallest id wins. ErrNotFound if none.
func (tx *Tx) MemberByEmail(email string) (model.Member, error) {
	ms, err := lookup(tx, memberEntity, idxMemberEmail, normEmail(email))
	if err != nil {
		return model.Member{}, err
	}
	if len(ms) == 0 {
		return model.Member{}, fmt.Errorf("member by email: %w", ErrNotFound)
	}
	return ms[0], nil
}
