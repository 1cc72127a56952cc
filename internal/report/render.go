package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Formats are the values of `cascadectl report --format`.
var Formats = []string{"text", "markdown", "json", "csv"}

// Write renders r in format (one of Formats).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "text":
		return r.writeSections(w, false)
	case "markdown":
		return r.writeSections(w, true)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return r.writeCSV(w)
	}
	return fmt.Errorf("report: format %q is not one of %s", format, strings.Join(Formats, ", "))
}

// tables builds the report's tables for one batch, or for every batch with
// a leading batch_id column when batch is "".
func (r *Report) tables(batch string) []*table {
	all := batch == ""
	mk := func(name, title string, cols []string, right ...bool) *table {
		t := &table{name: name, title: title, cols: cols, right: right}
		if all {
			t.cols = append([]string{"batch_id"}, cols...)
			t.right = append([]bool{false}, right...)
		}
		return t
	}
	row := func(t *table, b string, cells ...cell) {
		if all {
			t.add(append([]cell{str(b)}, cells...)...)
		} else if b == batch {
			t.add(cells...)
		}
	}
	tiers := mk("tier_summary", "tiers", []string{"tier", "prompts", "share", "failed", "cost_usd", "per_prompt",
		"p50_ms", "p95_ms", "p99_ms", "cascade_rate", "quality_fail_rate"},
		false, true, true, true, true, true, true, true, true, true, true)
	for _, x := range r.Tiers {
		row(tiers, x.BatchID, str(x.Tier), count(x.Prompts), pct(x.Share), count(x.Failed), usd(x.CostUSD),
			usd(x.CostPerPromptUSD), millis(x.P50MS), millis(x.P95MS), millis(x.P99MS), pct(x.CascadeRate),
			pct(x.QualityFailRate))
	}
	models := mk("model_summary", "models", []string{"model", "attempts", "ok", "quality", "rate_limited", "timeouts",
		"errors", "skipped", "success", "p50_ms", "p95_ms", "p99_ms", "tokens_in", "tokens_out", "cost_usd", "wasted_usd"},
		false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true)
	for _, m := range r.Models {
		row(models, m.BatchID, str(m.Model), count(m.Attempts), count(m.OK), count(m.QualityFailed),
			count(m.RateLimited), count(m.Timeouts), count(m.Errors), count(m.Skipped), pct(m.SuccessRate),
			millis(m.P50MS), millis(m.P95MS), millis(m.P99MS), count(m.InputTokens), count(m.OutputTokens),
			usd(m.CostUSD), usd(m.WastedUSD))
	}
	savings := mk("savings", "savings: the same tokens on one model for every prompt", []string{"tier", "paid_usd",
		"first_models_usd", "strongest", "strongest_usd", "saved_usd", "saved", "cheapest", "cheapest_usd", "premium_usd"},
		false, true, true, false, true, true, true, false, true, true)
	for _, s := range r.Savings {
		if !s.Priced() {
			row(savings, s.BatchID, str(s.Tier), usd(s.PaidUSD), str("-"), str("(no prices recorded)"), str("-"),
				str("-"), str("-"), str("-"), str("-"), str("-"))
			continue
		}
		row(savings, s.BatchID, str(s.Tier), usd(s.PaidUSD), usd(s.FirstModelUSD), str(s.StrongestModel),
			usd(s.StrongestUSD), usd(s.SavedUSD), pct(s.SavedShare), str(s.CheapestModel), usd(s.CheapestUSD),
			usd(s.PremiumUSD))
	}
	mis := mk("misrouting", "misrouting", []string{"prompt_id", "tier", "kind", "first_model", "model_used", "status",
		"attempts", "words", "tokens", "complex_hits", "moderate_hits", "cost_usd", "prompt"},
		false, false, false, false, false, false, true, true, true, true, true, true, false)
	for _, m := range r.Misrouted {
		row(mis, m.BatchID, str(m.PromptID), str(m.Tier), str(m.Kind), str(m.FirstModel), str(m.ModelUsed),
			str(m.Status), count(m.Attempts), count(m.WordCount), count(m.TokenCount), count(m.ComplexHits),
			count(m.ModerateHits), usd(m.CostUSD), cell{clip(m.Prompt, 60), m.Prompt})
	}
	lmis := mk("label_misrouting", "misrouting against labels", []string{"prompt_id", "tier", "kind", "model_used",
		"used_correct", "instead", "instead_usd", "cost_usd", "prompt"},
		false, false, false, false, false, false, true, true, false)
	for _, m := range r.LabelMisrouted {
		verdict := "unlabelled"
		if m.UsedCorrect != nil {
			verdict = fmt.Sprint(*m.UsedCorrect)
		}
		row(lmis, m.BatchID, str(m.PromptID), str(m.Tier), str(m.Kind), str(m.ModelUsed), str(verdict),
			str(m.InsteadModel), usd(m.InsteadUSD), usd(m.CostUSD), cell{clip(m.Prompt, 60), m.Prompt})
	}
	warn := mk("warnings", "warnings", []string{"kind", "subject", "value", "threshold", "message"},
		false, false, true, true, false)
	for _, x := range r.Warnings {
		row(warn, x.BatchID, str(x.Kind), str(x.Subject), cell{fmt.Sprintf("%.4g", x.Value), fmt.Sprint(x.Value)},
			cell{fmt.Sprintf("%.4g", x.Threshold), fmt.Sprint(x.Threshold)}, str(x.Message))
	}
	return []*table{tiers, models, savings, mis, lmis, warn}
}

// batchTotals sums the tiers and savings of one batch.
func (r *Report) batchTotals(batch string) (prompts, failed int64, paid, strongest, cheapest float64, priced bool) {
	for _, t := range r.Tiers {
		if t.BatchID == batch {
			prompts += t.Prompts
			failed += t.Failed
		}
	}
	priced = true
	for _, s := range r.Savings {
		if s.BatchID == batch {
			paid += s.PaidUSD
			strongest += s.StrongestUSD
			cheapest += s.CheapestUSD
			priced = priced && s.Priced()
		}
	}
	return
}

func misroutedSummary(counts []MisroutedCount, batch string) string {
	var parts []string
	for _, c := range counts {
		if c.BatchID == batch {
			parts = append(parts, fmt.Sprintf("%s %s %d", c.Tier, c.Kind, c.Prompts))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// sectionTitle is a table's title, with the counts of the misrouting views.
func (r *Report) sectionTitle(t *table, batch string) string {
	switch t.name {
	case "misrouting":
		return t.title + " (" + misroutedSummary(r.MisroutedCount, batch) + ")"
	case "label_misrouting":
		return t.title + " (" + misroutedSummary(r.LabelMisroutedCount, batch) + ")"
	}
	return t.title
}

func (r *Report) writeSections(w io.Writer, md bool) error {
	var b strings.Builder
	for i, batch := range r.Batches {
		if i > 0 {
			b.WriteString("\n")
		}
		prompts, failed, paid, strongest, cheapest, priced := r.batchTotals(batch)
		head := fmt.Sprintf("batch %s: %d prompts, %d failed, $%.6f paid", batch, prompts, failed, paid)
		if priced && strongest > 0 {
			head += fmt.Sprintf("; all on the strongest model: $%.6f (saved %.1f%%); all on the cheapest: $%.6f",
				strongest, 100*(strongest-paid)/strongest, cheapest)
		}
		if md {
			b.WriteString("## " + head + "\n")
		} else {
			b.WriteString(head + "\n")
		}
		for _, t := range r.tables(batch) {
			title := t.title
			switch t.name {
			case "misrouting", "label_misrouting":
				title = r.sectionTitle(t, batch)
				if len(t.rows) == 0 {
					continue
				}
			case "warnings":
				if len(t.rows) == 0 {
					if md {
						b.WriteString("\n**warnings:** none\n")
					} else {
						b.WriteString("\nwarnings: none\n")
					}
					continue
				}
				b.WriteString("\n")
				if md {
					b.WriteString("**warnings:**\n\n")
				} else {
					b.WriteString("warnings:\n")
				}
				for _, x := range t.rows {
					if md {
						b.WriteString("- " + x[len(x)-1].text + "\n")
					} else {
						b.WriteString("  ! " + x[len(x)-1].text + "\n")
					}
				}
				continue
			}
			if md {
				b.WriteString("\n### " + title + " (`" + t.name + "`)\n\n")
				_ = t.writeMarkdown(&b)
			} else {
				b.WriteString("\n" + title + " (" + t.name + ")\n")
				_ = t.writeText(&b)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	for i, t := range r.tables("") {
		if i > 0 {
			if err := cw.Write([]string{}); err != nil {
				return err
			}
		}
		if err := cw.Write([]string{"# " + t.name}); err != nil {
			return err
		}
		if err := t.writeCSV(cw); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
