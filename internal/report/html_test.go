package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// measureJS runs in Chromium at the end of an instrumented copy of the page:
// for every chart it counts the data marks the browser laid out with a
// non-zero size, and it records whether the page overflows the viewport.
const measureJS = `<script>
(function () {
  var main = document.querySelector('main');
  var out = {charts: {}, tables: {}, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    mainWidth: main.clientWidth, mainScrollWidth: main.scrollWidth};
  document.querySelectorAll('table[data-table]').forEach(function (t) {
    out.tables[t.closest('section').id + '/' + t.dataset.table] = t.querySelectorAll('tbody tr').length;
  });
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var n = 0;
    svg.querySelectorAll('.mark').forEach(function (m) {
      var r = m.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) n++;
    });
    out.charts[svg.closest('section').id + '/' + svg.dataset.chart] = {marks: n, width: svg.getBoundingClientRect().width};
  });
  var pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

// chromium runs headless Chromium with a fresh profile and no network use
// of its own. It fails the test when Chromium is missing: CI installs it
// (.ci/run), and a skipped browser test proves nothing.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (apt-get install chromium; .ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func TestHTMLInChromium(t *testing.T) {
	t.Parallel()
	st := fixture(t)
	r, err := Load(t.Context(), st.Pool(), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	html := page.String()

	// Self-contained: no script, stylesheet, image, font or frame from
	// anywhere, and no URL other than the SVG namespace.
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(", "src="} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if urls := regexp.MustCompile(`https?://[^"' <]+`).FindAllString(html, -1); len(urls) != strings.Count(html, "http://www.w3.org/2000/svg") {
		t.Errorf("page refers to %v", urls)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	instrumented := filepath.Join(dir, "measured.html")
	if err := os.WriteFile(instrumented, []byte(strings.Replace(html, "</main></body>", "</main>"+measureJS+"</body>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	// A phone is narrower than any window headless Chromium opens (500 px):
	// a copy whose body is held to 375 px lays the page out as a 375 px
	// screen would, since its CSS has no media queries or viewport units.
	if strings.Contains(pageCSS, "@media") || regexp.MustCompile(`[0-9.](vw|vh|vmin|vmax)\b`).MatchString(pageCSS) {
		t.Fatal("the page's CSS uses media queries or viewport units: the 375 px check below would not lay it out as a phone does")
	}
	phone := filepath.Join(dir, "phone.html")
	phoneHTML := strings.Replace(html, "</main></body>", "</main>"+measureJS+"</body>", 1)
	phoneHTML = strings.Replace(phoneHTML, "</style>", "body{width:375px;box-sizing:border-box}</style>", 1)
	if err := os.WriteFile(phone, []byte(phoneHTML), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, view := range []struct {
		width int
		file  string
	}{{1280, instrumented}, {500, instrumented}, {375, phone}} { // a desktop, the narrowest window, a phone
		width := view.width
		dom := chromium(t, fmt.Sprintf("--window-size=%d,2000", max(width, 500)), "--dump-dom", "file://"+view.file)
		m := regexp.MustCompile(`(?s)<pre id="measure">(.*?)</pre>`).FindSubmatch(dom)
		if m == nil {
			t.Fatalf("width %d: no measurement in the dumped DOM:\n%.2000s", width, dom)
		}
		var got struct {
			Charts map[string]struct {
				Marks int
				Width float64
			}
			Tables                     map[string]int
			ScrollWidth, InnerWidth    float64
			MainWidth, MainScrollWidth float64
		}
		if err := json.Unmarshal(bytes.ReplaceAll(m[1], []byte("&quot;"), []byte(`"`)), &got); err != nil {
			t.Fatalf("width %d: %v in %s", width, err, m[1])
		}
		for i, batch := range r.Batches {
			for _, c := range Charts {
				key := fmt.Sprintf("batch-%d/%s", i, c)
				ch, ok := got.Charts[key]
				if !ok {
					t.Errorf("width %d: batch %s: no %s chart", width, batch, c)
					continue
				}
				if ch.Marks == 0 || ch.Width <= 0 || ch.Width > got.MainWidth {
					t.Errorf("width %d: batch %s: chart %s has %d visible data marks, %.0f px wide in a %.0f px page", width, batch, c, ch.Marks, ch.Width, got.MainWidth)
				}
			}
		}
		// Every table of the text report, the misrouting one with b1's two
		// misrouted prompts (label_misrouting only with labels).
		for _, tb := range []string{"tier_summary", "model_summary", "savings", "misrouting"} {
			if _, ok := got.Tables["batch-0/"+tb]; !ok {
				t.Errorf("width %d: b1 has no %s table (tables: %v)", width, tb, got.Tables)
			}
		}
		if n := got.Tables["batch-0/misrouting"]; n != 2 {
			t.Errorf("width %d: b1's misrouting table has %d rows, want 2 (p2 under-routed, p4 over-routed candidate)", width, n)
		}
		if got.MainWidth > float64(width) || got.MainScrollWidth > got.MainWidth+1 {
			t.Errorf("width %d: the page's content is %.0f px wide in a %.0f px column: wide tables must scroll inside their box", width, got.MainScrollWidth, got.MainWidth)
		}
		// b1's flow has 6 (first model -> kept model) pairs: a band each.
		if n := got.Charts["batch-0/cascade-flow"].Marks; n != 6 {
			t.Errorf("width %d: b1 cascade flow has %d bands, want 6", width, n)
		}
		t.Logf("width %d: window %.0f px, page %.0f px, content column %.0f px (content %.0f px)", width, got.InnerWidth, got.ScrollWidth, got.MainWidth, got.MainScrollWidth)
		if got.ScrollWidth > got.InnerWidth+1 {
			t.Errorf("width %d: the page is %.0f px wide in a %.0f px window: wide tables must scroll inside their box", width, got.ScrollWidth, got.InnerWidth)
		}
	}

	// A screenshot of the page in a narrow window: a real image, with the
	// charts' bar colour in it.
	shot := filepath.Join(dir, "report.png")
	chromium(t, "--window-size=500,2400", "--hide-scrollbars", "--screenshot="+shot, "file://"+path)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	bar := 0
	bnds := img.Bounds()
	for y := bnds.Min.Y; y < bnds.Max.Y; y++ {
		for x := bnds.Min.X; x < bnds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, 0x3b) && near(g, 0x6f) && near(b, 0xb6) {
				bar++
			}
		}
	}
	if bnds.Dx() != 500 || bar < 200 {
		t.Errorf("screenshot %dx%d has %d pixels of the bar colour; want a 500 px wide page with bars", bnds.Dx(), bnds.Dy(), bar)
	}
	if dst := os.Getenv("REPORT_SCREENSHOT"); dst != "" { // make report-screenshot keeps it
		b, _ := os.ReadFile(shot)
		_ = os.WriteFile(dst, b, 0o644)
	}
}

func near(v uint32, want uint32) bool {
	d := int(v>>8) - int(want)
	return d > -6 && d < 6
}
