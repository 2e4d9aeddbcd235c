package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// rolloutStatus mirrors rollout.Status (the CLI does not import the
// daemon's packages).
type rolloutStatus struct {
	Box      string `json:"box"`
	Rollouts []struct {
		ID        string    `json:"id"`
		Version   string    `json:"version"`
		Size      int64     `json:"size"`
		SHA256    string    `json:"sha256"`
		Chunks    []string  `json:"chunks"`
		Origin    string    `json:"origin"`
		Canary    string    `json:"canary"`
		CanaryWhy string    `json:"canaryWhy"`
		Boxes     []string  `json:"boxes"`
		Verified  string    `json:"verified"`
		Created   time.Time `json:"created"`
		Progress  map[string]struct {
			Phase      string    `json:"phase"`
			Have       int       `json:"have"`
			Version    string    `json:"version"`
			Reason     string    `json:"reason"`
			ChunkBytes int64     `json:"chunkBytes"`
			At         time.Time `json:"at"`
		} `json:"progress"`
		State  string `json:"state"`
		Halted string `json:"halted"`
	} `json:"rollouts"`
}

// fleetUpdate is `deskgate fleet update BUNDLE|status`.
func fleetUpdate(ctx context.Context, c *admin.Client, arg, canary string, out io.Writer, show func(any, func()) (int, error)) (int, error) {
	if arg == "status" {
		var v rolloutStatus
		if err := c.Get(ctx, "/v1/fleet/update", nil, &v); err != nil {
			return 1, err
		}
		return show(v, func() { printRollouts(out, v) })
	}
	path, err := filepath.Abs(arg)
	if err != nil {
		return 2, err
	}
	var v struct {
		ID      string   `json:"id"`
		Version string   `json:"version"`
		Chunks  []string `json:"chunks"`
		Canary  string   `json:"canary"`
		Boxes   []string `json:"boxes"`
	}
	if err := c.PostJSON(ctx, "/v1/fleet/update", map[string]string{"bundle": path, "canary": canary}, &v); err != nil {
		return 1, err
	}
	return show(v, func() {
		rest := "no other box"
		if len(v.Boxes) > 1 {
			rest = strings.Join(v.Boxes[1:], ", ")
		}
		fmt.Fprintf(out, "rollout %s of %s started: %d chunks; canary %s, then %s. Follow it: deskgate fleet update status\n",
			v.ID, v.Version, len(v.Chunks), v.Canary, rest)
	})
}

func printRollouts(out io.Writer, v rolloutStatus) {
	if len(v.Rollouts) == 0 {
		fmt.Fprintln(out, "no fleet update yet (deskgate fleet update BUNDLE)")
		return
	}
	r := v.Rollouts[0]
	fmt.Fprintf(out, "rollout %s: %s from %s, started %s: %s", r.ID, r.Version, r.Origin, r.Created.Local().Format("2006-01-02 15:04:05"), r.State)
	if r.Halted != "" {
		fmt.Fprintf(out, ": %s", r.Halted)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "bundle %d bytes in %d chunks, sha256 %.16s…; %s\n", r.Size, len(r.Chunks), r.SHA256, r.Verified)
	fmt.Fprintf(out, "canary %s (%s)\n", r.Canary, r.CanaryWhy)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOX\tPHASE\tCHUNKS\tVERSION\tSINCE\tNOTE")
	for _, b := range r.Boxes {
		p, ok := r.Progress[b]
		phase := p.Phase
		if !ok {
			phase = "not started"
		}
		since := "-"
		if !p.At.IsZero() {
			since = p.At.Local().Format("15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", b, phase, p.Have, len(r.Chunks), orDash(p.Version), since, p.Reason)
	}
	tw.Flush()
	if n := len(v.Rollouts) - 1; n > 0 {
		fmt.Fprintf(out, "%d earlier rollouts (deskgate -json fleet update status)\n", n)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
