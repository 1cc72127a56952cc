#!/usr/bin/env bash
# The learned-router loop on simulated models, no API keys:
#   1. a batch routed by the article's heuristic (routes/learn.yaml),
#   2. cascadectl router train --from-db on that batch's outcomes and shadow verdicts,
#   3. a second batch, other prompts, routed by the learned router with as many prompts
#      in each tier as the heuristic gives them (so the comparison is at equal strong share),
#      and, as the control, the same prompts on the heuristic,
#   4. cascadectl report on each, and the cost and cascade rates side by side.
# Finds or starts Postgres and NATS as scripts/demo.sh does (scripts/demo-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.demo
mkdir -p "$STATE" bin
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

go build -o bin/ ./cmd/...
# Postgres and NATS: found or started as scripts/demo.sh does (scripts/demo-env.sh).
source scripts/demo-env.sh
bin/cascadectl migrate >/dev/null

# Two halves of the sample: train on one, deploy on the other.
head -n 625 testdata/prompts.jsonl >"$STATE/first.jsonl"
tail -n +626 testdata/prompts.jsonl >"$STATE/second.jsonl"
STAMP=$(date +%Y%m%d-%H%M%S)
H="loop-1-heuristic-$STAMP" L="loop-2-learned-$STAMP" C="loop-2-heuristic-$STAMP"
export WORKER_EXIT_WHEN_IDLE=true WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-128}" LOG_LEVEL="${LOG_LEVEL:-warn}"

run_batch() { # batch file routes
  bin/enqueue --batch "$1" "$2" >/dev/null
  ROUTES_FILE="$3" WORKER_ID="$1" bin/worker >"$STATE/$1.log" 2>&1 || { echo "worker failed; see $STATE/$1.log" >&2; exit 1; }
  bin/cascadectl verify "$1" >/dev/null
}

say "1. batch $H: 625 prompts on the heuristic"
run_batch "$H" "$STATE/first.jsonl" routes/learn.yaml

say "2. cascadectl router train --from-db $H"
bin/cascadectl router train --from-db "$H" --out "$STATE/router.json"

# The heuristic's tier shares on the second half (cascadectl classify, offline), so
# that the learned router sends as many prompts to each tier as the control does.
ROUTES_FILE=routes/learn.yaml bin/cascadectl classify "$STATE/second.jsonl" >"$STATE/second.tiers"
n=$(wc -l <"$STATE/second.tiers")
count() { grep -c "\"tier\":\"$1\"" "$STATE/second.tiers" || true; }
ns=$(count simple) nm=$(count moderate)
# shares: cut at the quantiles of the router's training prompts (what a user deploys);
# here the demo cuts the router's scores of the second half itself, at the ranks that
# give each tier exactly as many prompts as the heuristic gives it (thresholds:).
cp routes/learn.yaml "$STATE/learned.yaml"
echo "classifier: {kind: learned, model: router.json, shares: {simple: 0.5, moderate: 0.3, complex: 0.2}}" >>"$STATE/learned.yaml"
ROUTES_FILE="$STATE/learned.yaml" bin/cascadectl classify "$STATE/second.jsonl" |
  grep -o '"score":[-+0-9.eE]*' | cut -d: -f2 | sort -g >"$STATE/second.scores"
cut_at() { if (($1 >= n)); then echo 1.0000001; else sed -n "$(($1 + 1))p" "$STATE/second.scores"; fi; }
tm=$(cut_at "$ns") tc=$(cut_at $((ns + nm)))
cp routes/learn.yaml "$STATE/learned.yaml"
echo "classifier: {kind: learned, model: router.json, thresholds: {moderate: $tm, complex: $tc}}" >>"$STATE/learned.yaml"

say "3. batch $L: the other 625 prompts on the learned router ($ns simple, $nm moderate, $((n - ns - nm)) complex, as the heuristic: thresholds $tm / $tc)"
run_batch "$L" "$STATE/second.jsonl" "$STATE/learned.yaml"

say "   control batch $C: the same 625 prompts on the heuristic"
run_batch "$C" "$STATE/second.jsonl" routes/learn.yaml

say "4. reports"
for b in "$H" "$L" "$C"; do bin/cascadectl report "$b" --limit 5; echo; done
say "side by side (cost without shadow spend; cascade = the first model's answer was not kept)"
psql "$DATABASE_URL" -q -c "
  SELECT r.batch_id, count(*) AS prompts,
         round(100 * avg((r.tier <> 'simple')::int), 1) AS above_simple_pct,
         round(100 * avg((r.tier = 'complex')::int), 1) AS complex_pct,
         round(100 * avg((r.attempts > 1)::int), 1) AS cascade_pct,
         round(sum(l.answer_usd), 6) AS answer_usd,
         round(sum(l.shadow_usd), 6) AS shadow_usd
  FROM results r
  CROSS JOIN LATERAL (
      SELECT coalesce(sum(cost_usd) FILTER (WHERE outcome <> 'shadow'), 0) AS answer_usd,
             coalesce(sum(cost_usd) FILTER (WHERE outcome = 'shadow'), 0) AS shadow_usd
      FROM request_log q WHERE q.batch_id = r.batch_id AND q.prompt_id = r.prompt_id) l
  WHERE r.batch_id IN ('$H', '$L', '$C')
  GROUP BY r.batch_id ORDER BY r.batch_id"
