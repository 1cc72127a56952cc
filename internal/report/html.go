package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Charts names the charts, one <svg class="chart" data-chart="NAME"> per batch each:
// the page's contract with its tests and with anyone scraping it.
var Charts = []string{"cost-tier", "cost-model", "cascade-flow", "latency", "outcomes", "savings"}

// Colours of the charts' marks.
const (
	colBar      = "#3b6fb6"
	colOK       = "#2e9d5b"
	colQuality  = "#e08a1e"
	colLimited  = "#d9c21b"
	colError    = "#c8423b"
	colPaid     = "#3b6fb6"
	colStrong   = "#8a8f98"
	colCheap    = "#7cc4a0"
	colFlowLink = "#3b6fb6"
)

const pageCSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;color:#1d2330;background:#fafbfc}
main{max-width:1100px;margin:0 auto}
h1{font-size:1.35em;margin:.2em 0 .4em} h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #d7dbe2}
h3{font-size:1em;margin:1.2em 0 .3em}
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin:.5em 0}
.kpi{background:#fff;border:1px solid #d7dbe2;border-radius:6px;padding:6px 10px;min-width:120px}
.kpi b{display:block;font-size:1.2em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #d7dbe2;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}
.warn{background:#fff4e5;border-left:4px solid #e08a1e;padding:6px 10px;margin:4px 0}
.ok{color:#2e7d4f}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;background:#fff;font-size:12.5px}
th,td{border:1px solid #d7dbe2;padding:3px 6px;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef1f5;text-align:left}
.legend span{display:inline-block;margin-right:10px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
`

// WriteHTML writes one self-contained page: no scripts, fonts, images or
// links to anything outside it; charts are inline SVG.
func (r *Report) WriteHTML(w io.Writer) error {
	var b strings.Builder
	title := "promptcascade report"
	if r.Batch != "" {
		title += ": " + r.Batch
	}
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	b.WriteString(`<meta name="viewport" content="width=device-width, initial-scale=1">` + "\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<style>%s</style></head>\n<body><main>\n<h1>%s</h1>\n", esc(title), pageCSS, esc(title))
	for i, batch := range r.Batches {
		r.htmlBatch(&b, i, batch)
	}
	b.WriteString("</main></body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

func (r *Report) htmlBatch(b *strings.Builder, idx int, batch string) {
	prompts, failed, paid, strongest, cheapest, priced := r.batchTotals(batch)
	fmt.Fprintf(b, "<section id=\"batch-%d\">\n<h2>batch %s</h2>\n<div class=\"kpis\">", idx, esc(batch))
	kpi := func(label, value string) {
		fmt.Fprintf(b, `<div class="kpi">%s<b>%s</b></div>`, esc(label), esc(value))
	}
	kpi("prompts", fmt.Sprint(prompts))
	kpi("failed", fmt.Sprint(failed))
	kpi("paid", fmt.Sprintf("$%.4f", paid))
	if priced && strongest > 0 {
		kpi("all on strongest", fmt.Sprintf("$%.4f", strongest))
		kpi("saved", fmt.Sprintf("%.1f%%", 100*(strongest-paid)/strongest))
		kpi("all on cheapest", fmt.Sprintf("$%.4f", cheapest))
	}
	b.WriteString("</div>\n")

	var warns []Warning
	for _, x := range r.Warnings {
		if x.BatchID == batch {
			warns = append(warns, x)
		}
	}
	if len(warns) == 0 {
		b.WriteString("<p class=\"ok\">No warnings.</p>\n")
	}
	for _, x := range warns {
		fmt.Fprintf(b, "<div class=\"warn\">%s</div>\n", esc(x.Message))
	}

	b.WriteString("<div class=\"grid\">\n")
	var tierBars []bar
	for _, t := range r.Tiers {
		if t.BatchID == batch {
			tierBars = append(tierBars, bar{t.Tier, t.CostUSD, fmt.Sprintf("$%.4f (%d prompts)", t.CostUSD, t.Prompts)})
		}
	}
	figure(b, "Cost per tier", barChart("cost-tier", tierBars))
	var modelBars []bar
	for _, m := range r.Models {
		if m.BatchID == batch {
			modelBars = append(modelBars, bar{m.Model, m.CostUSD, fmt.Sprintf("$%.4f, wasted $%.4f", m.CostUSD, m.WastedUSD)})
		}
	}
	figure(b, "Cost per model", barChart("cost-model", modelBars))
	var flows []Flow
	for _, f := range r.Flows {
		if f.BatchID == batch {
			flows = append(flows, f)
		}
	}
	figure(b, "Cascade flow: first model tried → model whose answer was kept", flowChart(flows))
	var lat []LatencyBucket
	for _, l := range r.Latency {
		if l.BatchID == batch {
			lat = append(lat, l)
		}
	}
	figure(b, "Call latency per model (calls per bucket)", latencyChart(lat))
	var outs []OutcomeSlice
	for _, o := range r.Outcomes {
		if o.BatchID == batch {
			outs = append(outs, o)
		}
	}
	figure(b, "Outcome mix per model over time", legend([][2]string{{colOK, "ok"}, {colQuality, "quality failed"},
		{colLimited, "rate limited"}, {colError, "other errors"}})+outcomeChart(outs))
	var sav []Saving
	for _, s := range r.Savings {
		if s.BatchID == batch {
			sav = append(sav, s)
		}
	}
	figure(b, "Paid vs every prompt on the strongest / the cheapest model", legend([][2]string{{colPaid, "paid"},
		{colStrong, "all on strongest"}, {colCheap, "all on cheapest"}})+savingsChart(sav))
	b.WriteString("</div>\n")

	for _, t := range r.tables(batch) {
		if t.name == "warnings" {
			continue
		}
		if t.name == "label_misrouting" && len(t.rows) == 0 {
			continue
		}
		title := r.sectionTitle(t, batch)
		fmt.Fprintf(b, "<h3>%s <code>%s</code></h3>\n<div class=\"scroll\"><table data-table=\"%s\"><thead><tr>", esc(title), esc(t.name), esc(t.name))
		for _, c := range t.cols {
			fmt.Fprintf(b, "<th>%s</th>", esc(c))
		}
		b.WriteString("</tr></thead><tbody>\n")
		for _, row := range t.rows {
			b.WriteString("<tr>")
			for i, c := range row {
				if t.right[i] {
					fmt.Fprintf(b, "<td class=\"num\">%s</td>", esc(c.text))
				} else {
					fmt.Fprintf(b, "<td>%s</td>", esc(c.text))
				}
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</tbody></table></div>\n")
	}
	b.WriteString("</section>\n")
}

func figure(b *strings.Builder, caption, svg string) {
	fmt.Fprintf(b, "<figure><figcaption>%s</figcaption>%s</figure>\n", esc(caption), svg)
}

func legend(items [][2]string) string {
	var b strings.Builder
	b.WriteString(`<div class="legend">`)
	for _, it := range items {
		fmt.Fprintf(&b, `<span><i style="background:%s"></i>%s</span>`, it[0], esc(it[1]))
	}
	b.WriteString("</div>")
	return b.String()
}

type bar struct {
	label string
	value float64
	text  string
}

const chartW = 600

func svgOpen(b *strings.Builder, name string, h int, label string) {
	fmt.Fprintf(b, `<svg class="chart" data-chart="%s" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		name, chartW, h, esc(label))
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// barChart draws horizontal bars, one per item, with the value after each.
func barChart(name string, bars []bar) string {
	var b strings.Builder
	rowH, labelW, textW := 26, 150, 170
	h := max(len(bars), 1)*rowH + 8
	svgOpen(&b, name, h, name)
	maxV := 0.0
	for _, x := range bars {
		maxV = math.Max(maxV, x.value)
	}
	plotW := float64(chartW - labelW - textW)
	for i, x := range bars {
		y := 4 + i*rowH
		w := 0.0
		if maxV > 0 {
			w = math.Max(plotW*x.value/maxV, 1)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+16, esc(clip(x.label, 24)))
		fmt.Fprintf(&b, `<rect class="mark" x="%d" y="%d" width="%s" height="%d" fill="%s"><title>%s: %s</title></rect>`,
			labelW, y+3, f1(w), rowH-8, colBar, esc(x.label), esc(x.text))
		fmt.Fprintf(&b, `<text x="%s" y="%d">%s</text>`, f1(float64(labelW)+w+6), y+16, esc(x.text))
	}
	b.WriteString("</svg>")
	return b.String()
}

// flowChart draws first models on the left, answering models on the right
// ("failed" for prompts without an answer), and a band per pair whose width
// is its share of the prompts.
func flowChart(flows []Flow) string {
	var b strings.Builder
	total := int64(0)
	left, right := map[string]int64{}, map[string]int64{}
	for _, f := range flows {
		total += f.Prompts
		left[name(f.FirstModel, "(no attempt)")] += f.Prompts
		right[name(f.ModelUsed, "failed")] += f.Prompts
	}
	keys := func(m map[string]int64) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	lk, rk := keys(left), keys(right)
	gap := 8.0
	n := max(len(lk), len(rk), 1)
	h := 40 + n*44
	svgOpen(&b, "cascade-flow", h, "cascade flow")
	usable := float64(h-20) - gap*float64(n-1)
	nodeW, lx, rx := 10.0, 150.0, float64(chartW)-160
	pos := func(ks []string, m map[string]int64) map[string]float64 {
		out := map[string]float64{}
		y := 10.0
		for _, k := range ks {
			out[k] = y
			if total > 0 {
				y += usable*float64(m[k])/float64(total) + gap
			}
		}
		return out
	}
	ly, ry := pos(lk, left), pos(rk, right)
	for _, k := range lk {
		hh := usable * float64(left[k]) / float64(max(total, 1))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#1d2330"/>`, f1(lx-nodeW), f1(ly[k]), f1(nodeW), f1(hh))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s (%d)</text>`, f1(lx-nodeW-4), f1(ly[k]+hh/2+4), esc(clip(k, 20)), left[k])
	}
	for _, k := range rk {
		hh := usable * float64(right[k]) / float64(max(total, 1))
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="#1d2330"/>`, f1(rx), f1(ry[k]), f1(nodeW), f1(hh))
		fmt.Fprintf(&b, `<text x="%s" y="%s">%s (%d)</text>`, f1(rx+nodeW+4), f1(ry[k]+hh/2+4), esc(clip(k, 20)), right[k])
	}
	lOff, rOff := map[string]float64{}, map[string]float64{}
	ordered := append([]Flow(nil), flows...)
	sort.SliceStable(ordered, func(i, j int) bool {
		return name(ordered[i].FirstModel, "(no attempt)") < name(ordered[j].FirstModel, "(no attempt)") ||
			(name(ordered[i].FirstModel, "(no attempt)") == name(ordered[j].FirstModel, "(no attempt)") &&
				name(ordered[i].ModelUsed, "failed") < name(ordered[j].ModelUsed, "failed"))
	})
	for _, f := range ordered {
		l, rr := name(f.FirstModel, "(no attempt)"), name(f.ModelUsed, "failed")
		th := usable * float64(f.Prompts) / float64(max(total, 1))
		y0 := ly[l] + lOff[l] + th/2
		y1 := ry[rr] + rOff[rr] + th/2
		lOff[l] += th
		rOff[rr] += th
		mid := (lx + rx) / 2
		color := colFlowLink
		if f.ModelUsed == "" {
			color = colError
		} else if f.ModelUsed != f.FirstModel {
			color = colQuality
		}
		// A band: the top edge from left to right, the bottom edge back.
		fmt.Fprintf(&b, `<path class="mark" d="M%s,%s C%s,%s %s,%s %s,%s L%s,%s C%s,%s %s,%s %s,%s Z" fill="%s" fill-opacity="0.45"><title>%s → %s: %d prompts</title></path>`,
			f1(lx), f1(y0-th/2), f1(mid), f1(y0-th/2), f1(mid), f1(y1-th/2), f1(rx), f1(y1-th/2),
			f1(rx), f1(y1+th/2), f1(mid), f1(y1+th/2), f1(mid), f1(y0+th/2), f1(lx), f1(y0+th/2),
			color, esc(l), esc(rr), f.Prompts)
	}
	b.WriteString("</svg>")
	return b.String()
}

func name(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// latencyChart draws, per model, a small histogram of call latencies over
// LatencyBoundsMS (plus an overflow bucket).
func latencyChart(buckets []LatencyBucket) string {
	var models []string
	counts := map[string][]int64{}
	nb := len(LatencyBoundsMS) + 1
	for _, l := range buckets {
		c, ok := counts[l.Model]
		if !ok {
			models = append(models, l.Model)
			c = make([]int64, nb)
			counts[l.Model] = c
		}
		i := nb - 1
		for j, bound := range LatencyBoundsMS {
			if l.UpToMS == bound {
				i = j
			}
		}
		c[i] += l.Calls
	}
	var b strings.Builder
	rowH, labelW := 60, 130
	h := max(len(models), 1)*rowH + 24
	svgOpen(&b, "latency", h, "latency histogram per model")
	plotW := float64(chartW - labelW - 10)
	bw := plotW / float64(nb)
	for i, m := range models {
		y0 := float64(i*rowH + 6)
		maxC := int64(0)
		for _, c := range counts[m] {
			maxC = max(maxC, c)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`, labelW-6, f1(y0+float64(rowH)/2), esc(clip(m, 20)))
		for j, c := range counts[m] {
			if c == 0 {
				continue
			}
			hh := math.Max(float64(rowH-14)*float64(c)/float64(maxC), 1)
			fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s, %s: %d calls</title></rect>`,
				f1(float64(labelW)+float64(j)*bw+1), f1(y0+float64(rowH-10)-hh), f1(bw-2), f1(hh), colBar, esc(m), bucketLabel(j), c)
		}
	}
	yl := h - 6
	for j := range nb {
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, f1(float64(labelW)+(float64(j)+0.5)*bw), yl, bucketLabel(j))
	}
	b.WriteString("</svg>")
	return b.String()
}

func bucketLabel(j int) string {
	if j >= len(LatencyBoundsMS) {
		return ">" + msLabel(LatencyBoundsMS[len(LatencyBoundsMS)-1])
	}
	return "≤" + msLabel(LatencyBoundsMS[j])
}

func msLabel(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%gs", ms/1000)
	}
	return fmt.Sprintf("%gms", ms)
}

// outcomeChart draws, per model, stacked bars of outcomes per time slice.
func outcomeChart(slices []OutcomeSlice) string {
	var models []string
	byModel := map[string][]OutcomeSlice{}
	var starts []time.Time
	seen := map[time.Time]bool{}
	for _, s := range slices {
		if _, ok := byModel[s.Model]; !ok {
			models = append(models, s.Model)
		}
		byModel[s.Model] = append(byModel[s.Model], s)
		if !seen[s.Start] {
			seen[s.Start] = true
			starts = append(starts, s.Start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	col := map[time.Time]int{}
	for i, t := range starts {
		col[t] = i
	}
	var b strings.Builder
	rowH, labelW := 56, 130
	h := max(len(models), 1)*rowH + 22
	svgOpen(&b, "outcomes", h, "outcome mix per model over time")
	ncol := max(len(starts), 1)
	bw := float64(chartW-labelW-10) / float64(ncol)
	for i, m := range models {
		y0 := float64(i*rowH + 6)
		maxN := int64(0)
		for _, s := range byModel[m] {
			maxN = max(maxN, s.OK+s.Quality+s.Limited+s.Errors)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`, labelW-6, f1(y0+float64(rowH)/2), esc(clip(m, 20)))
		for _, s := range byModel[m] {
			x := float64(labelW) + float64(col[s.Start])*bw + 1
			y := y0 + float64(rowH-10)
			for _, part := range []struct {
				n     int64
				color string
				what  string
			}{{s.OK, colOK, "ok"}, {s.Quality, colQuality, "quality failed"}, {s.Limited, colLimited, "rate limited"}, {s.Errors, colError, "other errors"}} {
				if part.n == 0 {
					continue
				}
				hh := math.Max(float64(rowH-14)*float64(part.n)/float64(maxN), 1)
				y -= hh
				fmt.Fprintf(&b, `<rect class="mark" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s from %s: %d %s</title></rect>`,
					f1(x), f1(y), f1(math.Max(bw-2, 1)), f1(hh), part.color, esc(m), s.Start.Format("15:04:05"), part.n, part.what)
			}
		}
	}
	if len(starts) > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, labelW, h-6, starts[0].Format("15:04:05"))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s UTC</text>`, chartW-10, h-6, starts[len(starts)-1].Format("15:04:05"))
	}
	b.WriteString("</svg>")
	return b.String()
}

// savingsChart draws per tier three bars: paid, all on the strongest model,
// all on the cheapest.
func savingsChart(sav []Saving) string {
	var b strings.Builder
	groupH, labelW, textW := 62, 90, 120
	h := max(len(sav), 1)*groupH + 8
	svgOpen(&b, "savings", h, "savings against the strongest and the cheapest model")
	maxV := 0.0
	for _, s := range sav {
		maxV = math.Max(maxV, math.Max(s.PaidUSD, math.Max(s.StrongestUSD, s.CheapestUSD)))
	}
	plotW := float64(chartW - labelW - textW)
	for i, s := range sav {
		y0 := 4 + i*groupH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y0+32, esc(s.Tier))
		items := []struct {
			v     float64
			color string
			what  string
		}{{s.PaidUSD, colPaid, "paid"}}
		if s.Priced() {
			items = append(items, struct {
				v     float64
				color string
				what  string
			}{s.StrongestUSD, colStrong, "all on " + s.StrongestModel}, struct {
				v     float64
				color string
				what  string
			}{s.CheapestUSD, colCheap, "all on " + s.CheapestModel})
		}
		for j, it := range items {
			y := y0 + j*18
			w := 0.0
			if maxV > 0 {
				w = math.Max(plotW*it.v/maxV, 1)
			}
			fmt.Fprintf(&b, `<rect class="mark" x="%d" y="%d" width="%s" height="14" fill="%s"><title>%s %s: $%.6f</title></rect>`,
				labelW, y, f1(w), it.color, esc(s.Tier), esc(it.what), it.v)
			fmt.Fprintf(&b, `<text x="%s" y="%d">$%.4f</text>`, f1(float64(labelW)+w+4), y+11, it.v)
		}
	}
	b.WriteString("</svg>")
	return b.String()
}
