package appliance

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/deskgate/deskgate/appliance/admin"
)

// BenchmarkConsole50k: response times of the console's dashboard and
// member search (one match, and a query matching every member: at most
// 100 shown, all decided) over HTTP on loopback with 50,000 members
// imported from the simulator; p50 and p99 in milliseconds.
func BenchmarkConsole50k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, harnessOpts{seed: true, extra: 50000, noWelcome: true})
		h.start()
		h.waitImport(15 * time.Minute)
		ctx := context.Background()
		if err := admin.Dial(h.app.Config().Admin.Socket).PostJSON(ctx, "/v1/operators", map[string]string{"name": "bench", "role": "operator", "password": consolePassword}, nil); err != nil {
			b.Fatal(err)
		}
		base := "http://" + h.app.AdminAddr()
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Get(base + "/console/login")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := csrfRE.FindSubmatch(body)
		if m == nil {
			b.Fatal("no login form")
		}
		if resp, err = hc.PostForm(base+"/console/login", url.Values{"csrf": {string(m[1])}, "name": {"bench"}, "password": {consolePassword}}); err != nil || resp.StatusCode != http.StatusSeeOther {
			b.Fatalf("login: %v", err)
		}
		resp.Body.Close()
		for _, x := range []struct {
			name, path string
			n          int
		}{
			{"dashboard", "/console/dashboard", 200},
			{"search-one", "/console/members?q=dijkstra", 100},
			{"search-all", "/console/members?q=example", 20},
		} {
			var ds []time.Duration
			for range x.n {
				start := time.Now()
				resp, err := hc.Get(base + x.path)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %v %v", x.path, err, resp)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ds = append(ds, time.Since(start))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "ms-p50-"+x.name)
			b.ReportMetric(p(0.99), "ms-p99-"+x.name)
		}
		h.stop()
	}
}
