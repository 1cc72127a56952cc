#!/usr/bin/env bash
# One-command demo: builds the binaries, finds or starts Postgres and a
# nats-server >= 2.10, enqueues the 1,250-prompt sample, runs two workers on
# simulated models until the batch is done, and prints the per-tier summary.
# No API keys. Re-runnable: each run is a new batch.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.demo
mkdir -p "$STATE" bin
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building binaries"
go build -o bin/ ./cmd/...

# Postgres and NATS: found or started (scripts/demo-env.sh).
source scripts/demo-env.sh

# --- run ----------------------------------------------------------------------
bin/cascadectl migrate
BATCH="demo-$(date +%Y%m%d-%H%M%S)"
say "enqueueing testdata/prompts.jsonl as batch $BATCH"
bin/enqueue --batch "$BATCH" testdata/prompts.jsonl

say "running two workers until the batch is done"
export WORKER_EXIT_WHEN_IDLE=true WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-128}" LOG_LEVEL="${LOG_LEVEL:-warn}"
WORKER_ID=demo-1 bin/worker >"$STATE/worker-1.log" 2>&1 & w1=$!
WORKER_ID=demo-2 bin/worker >"$STATE/worker-2.log" 2>&1 & w2=$!
bin/cascadectl status "$BATCH" --watch --until-done
wait "$w1" "$w2" || { echo "a worker failed; see $STATE/worker-*.log" >&2; exit 1; }

say "summary of batch $BATCH"
bin/cascadectl report "$BATCH"
echo
echo "Try:  psql \"$DATABASE_URL\" -c \"SELECT tier, model_used, count(*), sum(cost_usd) FROM results WHERE batch_id = '$BATCH' GROUP BY 1, 2 ORDER BY 1, 2\""
echo "      bin/cascadectl export $BATCH --format csv | head"
