package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// cascadectl maintain creates months ahead; prune removes old attempts,
// dropping whole months and deleting the rest in chunks, and refuses bad
// flags with one line.
func TestMaintainAndPrune(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, 2*time.Minute)

	out := b.ctl(t, ctx, 0, "maintain", "--ahead", "4")
	next4 := time.Now().UTC().AddDate(0, 4, 0).Format("y2006m01")
	if !strings.Contains(out, "request_log_"+next4) || !strings.Contains(out, "request_log_default") {
		t.Fatalf("maintain --ahead 4 does not list request_log_%s and the default partition:\n%s", next4, out)
	}
	if !regexp.MustCompile(`created 2 partition\(s\); 5 month\(s\)`).MatchString(out) {
		t.Fatalf("maintain --ahead 4 after the migration's 3 months:\n%s", out)
	}

	conn := b.pg(t, ctx)
	// 200 attempts a year ago (a whole month, of batches old and keep), 5
	// attempts of batch old 100 days ago, 5 of today.
	if _, err := conn.Exec(ctx, `SELECT request_log_ensure_partitions(now() - interval '1 year', now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `
		INSERT INTO request_log (batch_id, prompt_id, attempt, delivery, model, outcome, cost_usd, started_at)
		SELECT CASE WHEN i <= 150 THEN 'old' ELSE 'keep' END, 'y' || i, 1, 1, 'sim/small', 'ok', 0.001, now() - interval '1 year'
		FROM generate_series(1, 200) i
		UNION ALL SELECT 'old', 'd' || i, 1, 1, 'sim/small', 'ok', 0.001, now() - interval '100 days' FROM generate_series(1, 5) i
		UNION ALL SELECT 'old', 'n' || i, 1, 1, 'sim/small', 'ok', 0.001, now() FROM generate_series(1, 5) i`); err != nil {
		t.Fatal(err)
	}

	out = b.ctl(t, ctx, 0, "prune", "--older-than", "90d", "--batch", "old", "--chunk", "50", "--dry-run")
	if !strings.Contains(out, "request_log of batch old: would remove 155 rows") {
		t.Fatalf("prune --batch old --dry-run:\n%s", out)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log`); n != 210 {
		t.Fatalf("dry run removed rows: %d left", n)
	}
	out = b.ctl(t, ctx, 0, "prune", "--older-than", "90d", "--batch", "old", "--chunk", "50")
	if !strings.Contains(out, "request_log of batch old: removed 155 rows") || !strings.Contains(out, "155 deleted in 4 chunk(s) of at most 50") {
		t.Fatalf("prune --batch old:\n%s", out)
	}
	out = b.ctl(t, ctx, 0, "prune", "--older-than", "90d")
	month := time.Now().UTC().AddDate(-1, 0, 0).Format("y2006m01")
	if !strings.Contains(out, "dropped partition request_log_"+month) || !strings.Contains(out, "request_log: removed 50 rows") {
		t.Fatalf("prune --older-than 90d:\n%s", out)
	}
	if n := queryInt(t, ctx, conn, `SELECT count(*) FROM request_log`); n != 5 {
		t.Fatalf("%d rows left, want today's 5", n)
	}

	for _, tc := range []struct{ args, want string }{
		{"prune", "--older-than is required"},
		{"prune --older-than 90 days", `unexpected argument "days"`},
		{"prune --older-than 0d", `--older-than "0d": must be more than zero`},
		{"prune --older-than 3x", `--older-than "3x": want a whole number of days`},
		{"prune --older-than 90d --chunk 0", "--chunk 0: want a positive number of rows"},
		{"maintain --ahead 500", "--ahead 500: want 0 to 120 months"},
	} {
		out := b.ctl(t, ctx, 2, strings.Fields(tc.args)...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("cascadectl %s: want %q in:\n%s", tc.args, tc.want, out)
		}
	}
}
