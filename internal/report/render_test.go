package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestReportGolden(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	r, err := Load(t.Context(), st.Pool(), "b1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ format, file string }{{"text", "b1.txt"}, {"markdown", "b1.md"}} {
		var b bytes.Buffer
		if err := r.Write(&b, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, f.file, b.Bytes())
	}
}

func TestReportEveryBatch(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	r, err := Load(t.Context(), st.Pool(), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.Batches, ",") != "b1,b2" || len(r.Tiers) != 4 {
		t.Fatalf("batches %v, %d tier rows; want b1,b2 and 4", r.Batches, len(r.Tiers))
	}
	var b bytes.Buffer
	if err := r.Write(&b, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "batch b2: 1 prompts, 0 failed, $0.000005 paid\n") {
		t.Errorf("text lacks the b2 section:\n%s", b.String())
	}
	// CSV: one block per view, raw numbers, every batch in a batch_id column.
	b.Reset()
	if err := r.Write(&b, "csv"); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(&b)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != "# tier_summary" {
		t.Errorf("csv starts with %q", got)
	}
	if got := strings.Join(recs[1][:4], ","); got != "batch_id,tier,prompts,share" {
		t.Errorf("csv header %q", got)
	}
	if got := strings.Join(recs[2][:6], ","); got != "b1,simple,3,0.375,0,0.0039" {
		t.Errorf("csv first row %q", got)
	}
	// JSON round-trips the report.
	b.Reset()
	if err := r.Write(&b, "json"); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Models) != len(r.Models) || back.Models[0] != r.Models[0] || len(back.Warnings) != len(r.Warnings) {
		t.Errorf("json round trip: %+v", back.Models)
	}
	if err := r.Write(&b, "yaml"); err == nil || !strings.Contains(err.Error(), `"yaml" is not one of text, markdown, json, csv`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	r, err := Load(t.Context(), st.Pool(), "b1", Options{Thresholds: Thresholds{ModelMinCalls: 3}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range r.Warnings {
		got = append(got, w.Kind+" "+w.Subject)
	}
	// simple 33% and moderate 67% cascade; simple, moderate and complex paid
	// 4.3x, 6.8x and 1.55x their first models; every model fails > 10% of
	// >= 3 calls; moderate p95 980 ms < 1000 ms is no spike.
	want := "cascade_rate simple,cascade_rate moderate,tier_cost simple,tier_cost moderate,tier_cost complex," +
		"model_failures sim/l1,model_failures sim/m1,model_failures sim/s1"
	if strings.Join(got, ",") != want {
		t.Errorf("warnings = %s\nwant       %s", strings.Join(got, ","), want)
	}
	if w := r.Warnings[0]; w.Value != 1.0/3 || w.Threshold != 0.1 ||
		w.Message != "tier simple: cascade rate 33.3% > 10% (1 of 3 prompts answered by a model other than the tier's first): its first model is unreliable; swap it or raise max_retries" {
		t.Errorf("first warning = %+v", w)
	}
	spikes := Warnings(&Report{Tiers: []Tier{{BatchID: "x", Tier: "simple", P50MS: 400, P95MS: 1300}, {BatchID: "x", Tier: "complex", P50MS: 9000, P95MS: 12000}}}, Thresholds{})
	if len(spikes) != 2 || spikes[0].Kind != "latency" || spikes[0].Value != 3.25 || spikes[1].Value != 12000 ||
		!strings.Contains(spikes[1].Message, "p95 latency 12000 ms >= 10000 ms") {
		t.Errorf("latency warnings = %+v", spikes)
	}
}
