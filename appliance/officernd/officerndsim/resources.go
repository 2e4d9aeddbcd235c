package officerndsim

// resource describes one v2 collection: its scope, what its list endpoint
// accepts, which writes exist and which webhook events they emit.
type resource struct {
	// scope is the prefix of its scopes: <scope>.read, .create, ...
	scope string
	// filters are the fields a list may filter on (field=, field[$op]=).
	filters []string
	// dates are filterable fields compared as instants.
	dates []string
	// sorts are the fields $sort accepts; nil rejects $sort.
	sorts []string
	// properties allows properties[key]=value filters.
	properties bool
	// create enables POST; update is "PUT", "PATCH" or "" (none);
	// del enables DELETE.
	create bool
	update string
	del    bool
	// writable fields on create; updatable adds fields allowed on update.
	writable  []string
	updatable []string
	// required fields on create.
	required []string
	// refs maps a reference field to the collection it points into; a
	// dangling or malformed one is a 500, like the real service.
	refs map[string]string
	// event is the webhook event prefix ("" = no events); removeEvent
	// says whether deletes emit <event>.removed.
	event       string
	removeEvent bool
	// v1 renames fields in webhook payloads (v2 name -> v1 name).
	v1 map[string]string
}

var common = []string{"_id", "createdAt", "modifiedAt"}

var v1Names = map[string]string{"location": "office", "company": "team"}

var resources = map[string]*resource{
	"members": {
		scope:      "flex.community.members",
		filters:    append([]string{"name", "email", "location", "company", "status"}, common...),
		dates:      []string{"createdAt", "modifiedAt", "startDate"},
		sorts:      []string{"name", "email", "location", "company", "status", "modifiedAt", "createdAt"},
		properties: true,
		create:     true, update: "PATCH", del: true,
		writable: []string{"name", "email", "phone", "image", "description", "location", "company", "status",
			"startDate", "isBillingPerson", "isContactPerson", "tags", "address", "billingDetails",
			"portalPrivacy", "socialProfiles", "properties"},
		required:    []string{"name"},
		refs:        map[string]string{"location": "locations", "company": "companies"},
		event:       "member",
		removeEvent: true,
		v1:          v1Names,
	},
	"companies": {
		scope:      "flex.community.companies",
		filters:    append([]string{"name", "email", "location", "status"}, common...),
		dates:      []string{"createdAt", "modifiedAt", "startDate"},
		sorts:      []string{"name", "email", "startDate", "modifiedAt", "createdAt"},
		properties: true,
		create:     true, update: "PATCH", del: true,
		writable: []string{"name", "description", "email", "image", "url", "location", "startDate", "status",
			"address", "billingDetails", "portalPrivacy", "hasActiveMembersAllowance",
			"activeMembersAllowanceLimit", "tags", "properties"},
		required:    []string{"name"},
		refs:        map[string]string{"location": "locations"},
		event:       "company",
		removeEvent: true,
		v1:          map[string]string{"location": "office"},
	},
	"memberships": {
		scope: "flex.community.memberships",
		// No modifiedAt/createdAt and no $sort: the real quirk.
		filters: []string{"_id", "name", "member", "company", "location", "plan", "status",
			"calculatedStatus", "isPersonal", "type", "startDate", "endDate"},
		dates:  []string{"startDate", "endDate"},
		create: true, update: "PUT", del: true,
		writable: []string{"name", "description", "isPersonal", "type", "location", "plan", "company", "member",
			"startDate", "endDate", "intervalLength", "intervalCount", "isLocked", "price", "deposit",
			"discount", "discountAmount", "contract", "properties"},
		updatable:   []string{"status"},
		required:    []string{"name", "startDate", "location", "plan"},
		refs:        map[string]string{"location": "locations", "plan": "plans", "member": "members", "company": "companies"},
		event:       "membership",
		removeEvent: true,
		v1:          v1Names,
	},
	"plans": {
		scope:   "flex.billing.plans",
		filters: []string{"_id", "name", "code", "type"},
	},
	"locations": {
		scope:   "flex.space.locations",
		filters: []string{"_id", "name", "code"},
	},
	"resources": {
		scope:   "flex.space.resources",
		filters: []string{"_id", "name", "type", "location"},
	},
	"bookings": {
		scope:   "flex.space.bookings",
		filters: append([]string{"member", "company", "location", "resource", "isCancelled", "start", "end"}, common...),
		dates:   []string{"createdAt", "modifiedAt", "start", "end"},
		sorts:   []string{"start", "end", "modifiedAt", "createdAt"},
		create:  true, update: "PATCH", del: true,
		writable: []string{"title", "description", "start", "end", "recurrence", "company", "member", "resource",
			"isTentative", "isFree", "visitors", "members", "extras", "fees", "serviceSlots", "source", "properties"},
		required:    []string{"resource", "start", "end"},
		refs:        map[string]string{"member": "members", "company": "companies", "resource": "resources"},
		event:       "booking",
		removeEvent: true,
		v1: map[string]string{"location": "office", "company": "team", "resource": "resourceId",
			"isCancelled": "canceled", "title": "summary", "isTentative": "tentative", "isFree": "free"},
	},
	"visitors": {
		scope:   "flex.community.visitors",
		filters: append([]string{"name", "email", "type", "member", "company"}, common...),
		dates:   []string{"createdAt", "modifiedAt"},
		create:  true, update: "PATCH", del: true,
		writable: []string{"name", "email", "phone", "description", "member", "company", "type", "properties"},
		required: []string{"name"},
		refs:     map[string]string{"member": "members", "company": "companies"},
	},
	"passes": {
		scope:      "flex.space.passes",
		filters:    append([]string{"member", "company", "membership", "status", "isPersonal", "plan"}, common...),
		dates:      []string{"createdAt", "modifiedAt", "validFrom", "validTo", "startDate", "endDate"},
		properties: true,
		create:     true, update: "PUT", del: true,
		writable: []string{"member", "company", "isPersonal", "membership", "plan", "count", "usedCount",
			"intervalLength", "startDate", "endDate", "renewDate", "validFrom", "validTo", "fee",
			"shouldGrantActiveStatus", "resourceType", "properties"},
		required: []string{"count"},
		refs:     map[string]string{"member": "members", "company": "companies", "plan": "plans"},
		event:    "pass",
		v1:       map[string]string{"company": "team"},
	},
	"webhooks": {
		scope:   "flex.settings.webhooks",
		filters: []string{"_id", "url", "isEnabled"},
		create:  true, del: true,
		writable: []string{"url", "eventTypes", "description", "isEnabled"},
		required: []string{"url"},
	},
}
