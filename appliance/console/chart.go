package console

import (
	"fmt"
	"html/template"
	"strings"
)

// chart renders series (same length) as a small SVG line chart, each
// downsampled to points columns (sum per column, or max for gauges).
// The class of each polyline is classes[i]; a single series with class
// "o" is drawn as a filled area.
func chart(label string, gauge bool, classes []string, series ...[]int) template.HTML {
	const w, h, points = 300, 80, 96
	cols := make([][]int, len(series))
	top := 1
	for i, s := range series {
		cols[i] = downsample(s, points, gauge)
		for _, v := range cols[i] {
			top = max(top, v)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" preserveAspectRatio="none" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(label))
	for i, c := range cols {
		var pts strings.Builder
		if classes[i] == "o" {
			fmt.Fprintf(&pts, "0,%d ", h)
		}
		for j, v := range c {
			x := float64(j) * float64(w) / float64(points-1)
			y := float64(h-2) - float64(v)*float64(h-6)/float64(top)
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		if classes[i] == "o" {
			fmt.Fprintf(&pts, "%d,%d", w, h)
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="%s"/>`, classes[i], strings.TrimSpace(pts.String()))
	}
	fmt.Fprintf(&b, `<text x="4" y="12" font-size="10" fill="#5b6470">%d</text></svg>`, top)
	return template.HTML(b.String()) // built from numbers and an escaped label only
}

func downsample(s []int, n int, gauge bool) []int {
	out := make([]int, n)
	if len(s) == 0 {
		return out
	}
	for i, v := range s {
		j := i * n / len(s)
		if gauge {
			out[j] = max(out[j], v)
		} else {
			out[j] += v
		}
	}
	return out
}
