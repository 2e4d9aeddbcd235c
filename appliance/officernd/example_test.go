package officernd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/deskgate/deskgate/appliance/officernd"
)

// Example lists members changed since the last sync and verifies a webhook
// delivery. The httptest server stands in for identity.officernd.com and
// app.officernd.com.
func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(officernd.Token{AccessToken: "t", TokenType: "Bearer", ExpiresIn: 3599})
	})
	mux.HandleFunc("GET /api/v2/organizations/acme/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(officernd.ListPage[officernd.Member]{
			RangeStart: 1, RangeEnd: 1,
			Results: []officernd.Member{{ID: "603dfbc260f4054084125d30", Name: "Ada Lovelace", Status: "active"}},
		})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, err := officernd.New(ctx, officernd.Config{
		APIBase:      srv.URL + "/api/v2", // default https://app.officernd.com/api/v2
		TokenURL:     srv.URL + "/oauth/token",
		OrgSlug:      "acme",
		ClientID:     "client-id",
		ClientSecret: "client-secret",
		Scopes:       []string{"flex.community.members.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	err = officernd.List(ctx, c, officernd.ResMembers, officernd.Query{ModifiedSince: since},
		func(page []officernd.Member) error {
			for _, m := range page {
				fmt.Println(m.ID, m.Name, m.Status)
			}
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}

	// A webhook delivery: verify the raw body, then parse and decode it.
	body := []byte(`{"event":"e1","eventType":"membership.updated","data":{"object":{"_id":"ms1","office":"loc1","calculatedStatus":"expired"}}}`)
	header := officernd.Sign("webhook-secret", body, time.Unix(1718000000, 0)) // what OfficeRnD sends
	if err := officernd.VerifySignature(header, body, "webhook-secret", time.Unix(1718000010, 0), 5*time.Minute); err != nil {
		log.Fatal(err)
	}
	ev, err := officernd.ParseEvent(body)
	if err != nil {
		log.Fatal(err)
	}
	ms, err := officernd.DecodeObject[officernd.Membership](ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, ms.ID, ms.Location, ms.CalculatedStatus)
	// Output:
	// 603dfbc260f4054084125d30 Ada Lovelace active
	// membership.updated ms1 loc1 expired
}
