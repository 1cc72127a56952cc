package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// cell is one value as people read it (text) and as programs read it (raw).
type cell struct{ text, raw string }

// table is one section of the report.
type table struct {
	name  string // the view or query it shows
	title string
	cols  []string
	right []bool // right-aligned (numeric) columns
	rows  [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func str(s string) cell { return cell{s, s} }
func count(n int64) cell {
	s := strconv.FormatInt(n, 10)
	return cell{s, s}
}
func usd(f float64) cell { return cell{fmt.Sprintf("%.6f", f), strconv.FormatFloat(f, 'f', -1, 64)} }
func pct(f float64) cell {
	return cell{fmt.Sprintf("%.1f%%", 100*f), strconv.FormatFloat(f, 'f', -1, 64)}
}
func millis(f float64) cell {
	return cell{strconv.FormatFloat(f, 'f', 0, 64), strconv.FormatFloat(f, 'f', -1, 64)}
}

// clip shortens s to n characters for a table cell, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// writeText writes t as aligned columns. Widths count characters, not bytes.
func (t *table) writeText(w io.Writer) error {
	width := make([]int, len(t.cols))
	for i, c := range t.cols {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c.text))
		}
	}
	line := func(vals []string) string {
		var b strings.Builder
		for i, v := range vals {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(v))
			if i > 0 {
				b.WriteString("  ")
			}
			if t.right[i] {
				b.WriteString(pad + v)
			} else if i < len(vals)-1 {
				b.WriteString(v + pad)
			} else {
				b.WriteString(v)
			}
		}
		return strings.TrimRight(b.String(), " ") + "\n"
	}
	var b strings.Builder
	b.WriteString(line(t.cols))
	for _, r := range t.rows {
		vals := make([]string, len(r))
		for i, c := range r {
			vals[i] = c.text
		}
		b.WriteString(line(vals))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMarkdown writes t as a GitHub-flavoured Markdown table.
func (t *table) writeMarkdown(w io.Writer) error {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.cols, " | ") + " |\n|")
	for i := range t.cols {
		if t.right[i] {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		vals := make([]string, len(r))
		for i, c := range r {
			vals[i] = esc(c.text)
		}
		b.WriteString("| " + strings.Join(vals, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCSV writes t's raw values with a header row.
func (t *table) writeCSV(cw *csv.Writer) error {
	if err := cw.Write(t.cols); err != nil {
		return err
	}
	for _, r := range t.rows {
		vals := make([]string, len(r))
		for i, c := range r {
			vals[i] = c.raw
		}
		if err := cw.Write(vals); err != nil {
			return err
		}
	}
	return nil
}
