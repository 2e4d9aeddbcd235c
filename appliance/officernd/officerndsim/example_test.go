package officerndsim_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/deskgate/deskgate/appliance/officernd"
	"github.com/deskgate/deskgate/appliance/officernd/officerndsim"
)

// A test serves the sim with httptest and points the officernd client at it.
func Example() {
	sim := officerndsim.New(officerndsim.Options{Seed: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	ctx := context.Background()
	cfg := sim.ClientConfig(srv.URL)
	cfg.MaxRetries = -1 // fail fast when the fault below is injected
	c, err := officernd.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	members, _, err := c.Members(ctx, officernd.Query{})
	if err != nil {
		panic(err)
	}
	expired, err := c.Membership(ctx, sim.Seeded().IDs["membership:expired"])
	if err != nil {
		panic(err)
	}
	fmt.Println(len(members) == len(sim.Seeded().Members), expired.CalculatedStatus)

	// Faults make the next calls fail the way OfficeRnD does.
	sim.SetFaults(officerndsim.Faults{Down: true})
	_, err = c.Member(ctx, members[0].ID)
	fmt.Println(err != nil)
	// Output:
	// true expired
	// true
}
