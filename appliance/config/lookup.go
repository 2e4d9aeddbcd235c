package config

// Group returns the group named name.
func (c *Config) Group(name string) (Group, bool) {
	for _, g := range c.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// PlanFor returns the mapping for an OfficeRnD plan, matched by id first,
// then by name, ignoring case and surrounding spaces (as duplicate
// detection does).
func (c *Config) PlanFor(id, name string) (PlanMapping, bool) {
	for _, key := range []string{id, name} {
		if normKey(key) == "" {
			continue
		}
		for _, p := range c.Plans {
			if normKey(p.Plan) == normKey(key) {
				return p, true
			}
		}
	}
	return PlanMapping{}, false
}

// LocationFor returns the mapping for an OfficeRnD location, matched by id
// first, then by name, ignoring case and surrounding spaces.
func (c *Config) LocationFor(id, name string) (LocationMapping, bool) {
	for _, key := range []string{id, name} {
		if normKey(key) == "" {
			continue
		}
		for _, l := range c.Locations {
			if normKey(l.Location) == normKey(key) {
				return l, true
			}
		}
	}
	return LocationMapping{}, false
}
