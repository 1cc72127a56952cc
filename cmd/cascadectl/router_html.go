package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/promptcascade/promptcascade/internal/router"
)

// The evaluation page: one inline SVG chart of accuracy against strong share
// for every method, the cheap and strong accuracies as dashed lines, and the
// summary table. No script, no external resources.
// Chart geometry.
const (
	chartW, chartH                               = 760.0, 440.0
	chartLeft, chartRight, chartTop, chartBottom = 60.0, 600.0, 20.0, 400.0
)

var evalPage = template.Must(template.New("eval").Funcs(template.FuncMap{
	"pct":      pct,
	"at":       func(m router.Method, s float64) string { return pct(router.AccuracyAt(m.Full(), s)) },
	"legendY":  func(i int) float64 { return chartTop + float64(i)*20 },
	"legendTY": func(i int) float64 { return chartTop + float64(i)*20 + 11 },
	"legendTX": func(x float64) float64 { return x + 18 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>router eval: {{.File}}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}
.axis{stroke:#444}.grid{stroke:#eee}text{font-size:12px}</style></head><body>
<h1>Router evaluation</h1>
<p>{{.File}}: {{.Ev.Prompts}} prompts; cheap <b>{{.Ev.Cheap}}</b> {{pct .Ev.CheapAccuracy}}, strong <b>{{.Ev.Strong}}</b> {{pct .Ev.StrongAccuracy}}.<br>
Held out: {{.Ev.HeldOut}}.</p>
<svg width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="accuracy against strong share">
{{range .Grid}}<line class="grid" x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}"/><text x="{{.TX}}" y="{{.TY}}" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}<line class="axis" x1="{{.Left}}" y1="{{.Bottom}}" x2="{{.Right}}" y2="{{.Bottom}}"/><line class="axis" x1="{{.Left}}" y1="{{.Top}}" x2="{{.Left}}" y2="{{.Bottom}}"/>
{{range .Refs}}<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Y}}" y2="{{.Y}}" stroke="{{.Color}}" stroke-dasharray="5,4"/><text x="{{$.Right}}" y="{{.TY}}" text-anchor="end" fill="{{.Color}}">{{.Label}}</text>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"/>
{{end}}{{range $i, $l := .Lines}}<rect x="{{$.LegendX}}" y="{{legendY $i}}" width="12" height="12" fill="{{$l.Color}}"/><text x="{{legendTX $.LegendX}}" y="{{legendTY $i}}">{{$l.Name}}</text>
{{end}}<text x="{{.MidX}}" y="{{.H}}" text-anchor="middle" dy="-4">share of prompts sent to the strong model</text>
<text transform="translate(14,{{.MidY}}) rotate(-90)" text-anchor="middle">accuracy</text>
</svg>
<table><tr><th>method</th><th>APGR</th><th>strong share for 95% of strong</th><th>accuracy at 20% / 50% / 80% strong</th></tr>
{{range .Ev.Methods}}<tr><td>{{.Name}}</td><td>{{printf "%.3f" .APGR}}</td><td>{{pct .Share95}}</td><td>{{at . 0.2}} / {{at . 0.5}} / {{at . 0.8}}</td></tr>
{{end}}</table>
<p>APGR (average performance gap recovered, as RouteLLM defines it): area under the curve above the cheap model's
accuracy over the area between the strong and the cheap model's accuracy. Random routing is 0.5.</p>
</body></html>
`))

type svgLine struct {
	Name, Color, Points string
}

type svgRef struct {
	Y, TY        float64
	Color, Label string
}

type svgGrid struct {
	X1, Y1, X2, Y2, TX, TY float64
	Anchor, Label          string
}

func renderEvalHTML(w io.Writer, file string, ev *router.Evaluation) error {
	const wd, ht, left, right, top, bottom = chartW, chartH, chartLeft, chartRight, chartTop, chartBottom
	lo, hi := 1.0, 0.0
	for _, m := range ev.Methods {
		for _, p := range m.Curve {
			lo, hi = min(lo, p.Accuracy), max(hi, p.Accuracy)
		}
	}
	lo, hi = max(0, lo-0.02), min(1, hi+0.02)
	r1 := func(v float64) float64 { return math.Round(v*10) / 10 }
	x := func(s float64) float64 { return r1(left + s*(right-left)) }
	y := func(a float64) float64 { return r1(bottom - (a-lo)/(hi-lo)*(bottom-top)) }
	colors := []string{"#d62728", "#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd"}
	data := struct {
		File                                                string
		Ev                                                  *router.Evaluation
		W, H, Left, Right, Top, Bottom, MidX, MidY, LegendX float64
		Lines                                               []svgLine
		Refs                                                []svgRef
		Grid                                                []svgGrid
	}{File: file, Ev: ev, W: wd, H: ht, Left: left, Right: right, Top: top, Bottom: bottom,
		MidX: (left + right) / 2, MidY: (top + bottom) / 2, LegendX: right + 20}
	for i, m := range ev.Methods {
		var pts []string
		for _, p := range m.Full() {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Share), y(p.Accuracy)))
		}
		data.Lines = append(data.Lines, svgLine{m.Name, colors[i%len(colors)], strings.Join(pts, " ")})
	}
	data.Refs = []svgRef{
		{y(ev.CheapAccuracy), y(ev.CheapAccuracy) + 14, "#999", "cheap " + pct(ev.CheapAccuracy)},
		{y(ev.StrongAccuracy), y(ev.StrongAccuracy) - 4, "#333", "strong " + pct(ev.StrongAccuracy)},
		{y(ev.Target), y(ev.Target) - 4, "#e377c2", "95% of strong"},
	}
	for i := 0; i <= 10; i++ {
		s := float64(i) / 10
		data.Grid = append(data.Grid, svgGrid{x(s), top, x(s), bottom, x(s), bottom + 16, "middle", fmt.Sprintf("%d%%", i*10)})
		a := lo + (hi-lo)*float64(i)/10
		data.Grid = append(data.Grid, svgGrid{left, y(a), right, y(a), left - 6, y(a) + 4, "end", pct(a)})
	}
	return evalPage.Execute(w, data)
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
