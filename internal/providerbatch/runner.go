package providerbatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/pricing"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/seed"
)

// Limits size and pace one model's provider batches.
type Limits struct {
	MaxRequests int           // a batch is sent once this many prompts wait
	MaxBytes    int64         // ... or their requests add up to this many bytes
	FlushAfter  time.Duration // ... or the oldest has waited this long
	PollEvery   time.Duration // how often a submitted batch is polled
}

// Model is one batch-mode model.
type Model struct {
	Name   string // "provider/model" as in the routes file
	Client Client
	// Price is the model's synchronous price; batch answers cost
	// Price.Batch().
	Price  pricing.Price
	Limits Limits
}

// Cascade is what the poller needs of the cascade: the tier's models in
// order, and the quality gate that answers must pass.
type Cascade interface {
	Step(tier prompt.Tier, position int) (model string, batch, ok bool)
	Gate(promptText, response string) (prompt.Outcome, string)
}

// Publisher hands a prompt back to the workers (a job with Resume set), and
// returns once the stream has stored it.
type Publisher interface {
	PublishJob(ctx context.Context, job prompt.Job) error
}

// Writer stores results and attempts; extra runs in the same transaction.
// It also reserves budget (Reserver): a required ability, so that a
// wrapper of the writer cannot drop the reservations silently.
// *store.Store implements it.
type Writer interface {
	WriteTx(ctx context.Context, rs []prompt.Result, extra func(ctx context.Context, tx pgx.Tx) error) ([]bool, error)
	Reserver
}

// Hooks are called at fixed points; cmd/worker turns them into crashes for
// the kill -9 tests. A nil hook is off.
type Hooks struct {
	// AfterCreate runs when the provider has accepted a batch and before
	// its id is stored.
	AfterCreate func(model, label string)
	// AfterIngestChunk runs after each committed chunk of an ingest, with
	// the number of items of the batch settled so far.
	AfterIngestChunk func(model string, settled int)
}

// Config configures a Runner. Zero values take the defaults noted.
type Config struct {
	Models   []Model
	WorkerID string
	// Tick is how often each model's loop checks flush conditions, due
	// polls and hand-backs (1s).
	Tick time.Duration
	// IngestChunk is how many items one ingest transaction settles (500).
	IngestChunk int
	// MaxRounds is how many provider batches of the same model an item may
	// go through when it expired, was cancelled or failed transiently and
	// no model follows in its tier (2).
	MaxRounds int
	// MaxSubmitAttempts is how many failed creates an intent survives
	// before its items are treated as errored (5).
	MaxSubmitAttempts int
	// ListSkew widens the reconcile's list window before an intent's
	// creation time, for clocks that disagree (5m).
	ListSkew time.Duration
	Hooks    Hooks
}

// Runner is the submitter and poller of every batch-mode model. Run it in
// every worker: for each model, the worker that holds the model's advisory
// lock does the work; when it dies, its connection closes, the lock is
// released and another worker takes over at its next tick.
type Runner struct {
	cfg    Config
	pool   *pgxpool.Pool
	writer Writer
	cas    Cascade
	pub    Publisher
	log    *slog.Logger
}

// New checks cfg and returns a Runner.
func New(cfg Config, pool *pgxpool.Pool, w Writer, cas Cascade, pub Publisher, log *slog.Logger) (*Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.IngestChunk <= 0 {
		cfg.IngestChunk = 500
	}
	if cfg.MaxRounds <= 0 {
		cfg.MaxRounds = 2
	}
	if cfg.MaxSubmitAttempts <= 0 {
		cfg.MaxSubmitAttempts = 5
	}
	if cfg.ListSkew <= 0 {
		cfg.ListSkew = 5 * time.Minute
	}
	seen := map[string]bool{}
	for i := range cfg.Models {
		m := &cfg.Models[i]
		if _, _, err := llm.SplitModel(m.Name); err != nil {
			return nil, fmt.Errorf("providerbatch: %w", err)
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("providerbatch: model %s listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Client == nil {
			return nil, fmt.Errorf("providerbatch: model %s: its provider has no batch API", m.Name)
		}
		l := m.Limits
		if l.MaxRequests <= 0 || l.MaxBytes <= 0 || l.FlushAfter <= 0 || l.PollEvery <= 0 {
			return nil, fmt.Errorf("providerbatch: model %s: max_requests, max_bytes, flush_after and poll_every must be > 0", m.Name)
		}
	}
	return &Runner{cfg: cfg, pool: pool, writer: w, cas: cas, pub: pub, log: log}, nil
}

// Run runs every model's loop until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range r.cfg.Models {
		m := &r.cfg.Models[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.modelLoop(ctx, m)
		}()
	}
	wg.Wait()
	return nil
}

// lockKey is the SQL for the advisory lock of a model's submitter and
// poller ($1 is the model). Advisory locks are database-wide, so the key
// includes the schema: deployments (and tests) in separate schemas of one
// database do not contend.
const lockKey = `hashtextextended('promptcascade.providerbatch:' || current_schema() || ':' || $1, 0)`

// modelLoop takes the model's lock when it is free and works while it
// holds it.
func (r *Runner) modelLoop(ctx context.Context, m *Model) {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	var held *pgxpool.Conn
	release := func() {
		if held != nil {
			// Unlock explicitly: the connection goes back to the pool.
			_, _ = held.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")", m.Name)
			held.Release()
			held = nil
		}
	}
	defer release()
	for {
		if held == nil {
			held = r.tryLock(ctx, m)
		} else if err := held.Ping(ctx); err != nil {
			// The session (and with it the lock) may be gone.
			r.log.Warn("provider batch: lost the lock connection", "model", m.Name, "err", err)
			held.Release()
			held = nil
		}
		if held != nil {
			if err := r.step(ctx, m); err != nil && ctx.Err() == nil {
				r.log.Warn("provider batch: step failed; retrying at the next tick", "model", m.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Runner) tryLock(ctx context.Context, m *Model) *pgxpool.Conn {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock("+lockKey+")", m.Name).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil
	}
	r.log.Info("provider batch: submitting and polling", "model", m.Name)
	return conn
}

// step is one round of a lock holder's work: reconcile intents left by a
// crash, flush queued items into new batches, poll and ingest, and hand
// prompts back to the queue.
func (r *Runner) step(ctx context.Context, m *Model) error {
	// Prompts of a canceled batch that never went out (or were about to
	// be handed back) are settled as canceled: nothing was paid for them.
	if _, err := r.pool.Exec(ctx, settleCanceledSQL, m.Name); err != nil {
		return fmt.Errorf("settle canceled: %w", err)
	}
	// Budget holds of prompts waiting to go out or at the provider count
	// for as long as they wait (a provider batch runs for hours; an
	// unrefreshed hold expires after store.HoldExpiry).
	if _, err := r.pool.Exec(ctx, `UPDATE budget_holds SET created_at = now() WHERE id IN (
		SELECT budget_hold FROM provider_batch_items WHERE model = $1 AND state IN ('queued', 'submitted') AND budget_hold IS NOT NULL)
		AND created_at < now() - interval '1 minute'`, m.Name); err != nil {
		return fmt.Errorf("refresh budget holds: %w", err)
	}
	if err := r.reconcile(ctx, m); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if err := r.flush(ctx, m); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if _, err := CancelAbandoned(ctx, r.pool, m.Name, m.Client, r.log); err != nil {
		// The provider may answer later; polling goes on meanwhile.
		r.log.Warn("provider batch: cancel of a batch of canceled prompts failed; retrying at the next tick", "model", m.Name, "err", err)
	}
	if err := r.poll(ctx, m); err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	if err := r.handBack(ctx, m); err != nil {
		return fmt.Errorf("hand back: %w", err)
	}
	return nil
}

// StepOnce runs one step for model if this process can take its lock, and
// reports whether it did; for tests and `cascadectl batches` tooling.
func (r *Runner) StepOnce(ctx context.Context, model string) (bool, error) {
	for i := range r.cfg.Models {
		m := &r.cfg.Models[i]
		if m.Name != model {
			continue
		}
		conn := r.tryLock(ctx, m)
		if conn == nil {
			return false, nil
		}
		defer func() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")", m.Name)
			conn.Release()
		}()
		return true, r.step(ctx, m)
	}
	return false, fmt.Errorf("providerbatch: %s is not a batch-mode model", model)
}

func newLabel(id int64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("pc%d-%s", id, hex.EncodeToString(b[:]))
}

// flush gathers queued items into new provider batches while a flush
// condition holds, and submits each.
func (r *Runner) flush(ctx context.Context, m *Model) error {
	l := m.Limits
	for {
		var n int
		var size int64
		var oldest *time.Time
		if err := r.reserve(ctx, m); err != nil {
			return err
		}
		err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(bytes), 0), min(queued_at)
			FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
			WHERE i.model = $1 AND i.state = 'queued' AND `+eligible, m.Name).Scan(&n, &size, &oldest)
		if err != nil {
			return err
		}
		if n == 0 || (n < l.MaxRequests && size < l.MaxBytes && time.Since(*oldest) < l.FlushAfter) {
			return nil
		}
		id, label, err := r.recordIntent(ctx, m)
		if err != nil {
			return err
		}
		if id == 0 {
			return nil
		}
		if err := r.submit(ctx, m, id, label); err != nil {
			return err
		}
	}
}

// eligible is the SQL condition (items i, their batch b, which may be
// missing) for a queued item that may go out: its batch is not canceled,
// and either money is held for it, or its batch runs without a budget. A
// batch paused by its budget still sends the prompts it holds money for.
const eligible = `coalesce(b.state, 'running') <> 'canceled'
	AND (i.budget_hold IS NOT NULL OR (coalesce(b.state, 'running') = 'running' AND b.budget_usd IS NULL))`

// recordIntent takes the oldest queued items (up to MaxRequests and
// MaxBytes, at least one) into a new provider_batches row in state
// 'submitting', in one transaction, before anything is sent.
func (r *Runner) recordIntent(ctx context.Context, m *Model) (int64, string, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO provider_batches (model, label, state, items)
		VALUES ($1, 'pending-' || gen_random_uuid(), 'submitting', 1) RETURNING id`, m.Name).Scan(&id); err != nil {
		return 0, "", err
	}
	label := newLabel(id)
	tag, err := tx.Exec(ctx, `
		WITH picked AS (
			SELECT batch_id, prompt_id, sum(bytes) OVER (ORDER BY queued_at, batch_id, prompt_id) AS running,
			       row_number() OVER (ORDER BY queued_at, batch_id, prompt_id) AS n
			FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
			WHERE i.model = $1 AND i.state = 'queued' AND `+eligible+`
			ORDER BY queued_at, batch_id, prompt_id
			LIMIT $2
		)
		UPDATE provider_batch_items i
		SET state = 'submitted', provider_batch = $3, custom_id = $4 || '-' || p.n, rounds = i.rounds + 1, updated_at = now()
		FROM picked p
		WHERE i.batch_id = p.batch_id AND i.prompt_id = p.prompt_id AND i.model = $1 AND i.state = 'queued'
		  AND (p.running <= $5 OR p.n = 1)`, m.Name, m.Limits.MaxRequests, id, label, m.Limits.MaxBytes)
	if err != nil {
		return 0, "", err
	}
	if tag.RowsAffected() == 0 {
		return 0, "", nil
	}
	if _, err := tx.Exec(ctx, `UPDATE provider_batches SET label = $2,
			items = (SELECT count(*) FROM provider_batch_items WHERE provider_batch = $1),
			bytes = (SELECT coalesce(sum(bytes), 0) FROM provider_batch_items WHERE provider_batch = $1)
		WHERE id = $1`, id, label); err != nil {
		return 0, "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, "", err
	}
	return id, label, nil
}

// requests loads the requests of a provider batch.
func (r *Runner) requests(ctx context.Context, pb int64) ([]llm.BatchRequest, error) {
	rows, err := r.pool.Query(ctx, `SELECT custom_id, job FROM provider_batch_items WHERE provider_batch = $1 AND state = 'submitted'
		ORDER BY custom_id`, pb)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []llm.BatchRequest
	for rows.Next() {
		var cid string
		var job prompt.Job
		if err := rows.Scan(&cid, &job); err != nil {
			return nil, err
		}
		out = append(out, llm.BatchRequest{CustomID: cid, Request: llm.Request{
			System: job.System, Prompt: job.Prompt, MaxTokens: job.MaxTokens, Seed: seed.String(cid),
		}})
	}
	return out, rows.Err()
}

// submit sends an intent to the provider and stores the batch id it gets;
// prompts of batches canceled since the intent was recorded are taken out
// first (an intent left empty is not sent).
func (r *Runner) submit(ctx context.Context, m *Model, id int64, label string) error {
	left, err := r.pruneCanceled(ctx, m, id)
	if err != nil || left == 0 {
		return err
	}
	reqs, err := r.requests(ctx, id)
	if err != nil {
		return err
	}
	_, bare, _ := llm.SplitModel(m.Name)
	b, err := m.Client.SubmitBatch(ctx, label, bare, reqs)
	if err != nil {
		return r.submitFailed(ctx, m, id, err)
	}
	if h := r.cfg.Hooks.AfterCreate; h != nil {
		h(m.Name, label)
	}
	if err := r.recordSubmitted(ctx, id, b); err != nil {
		return err
	}
	r.log.Info("provider batch submitted", "model", m.Name, "label", label, "provider_batch", b.ID, "requests", len(reqs))
	return nil
}

func (r *Runner) recordSubmitted(ctx context.Context, id int64, b llm.Batch) error {
	_, err := r.pool.Exec(ctx, `UPDATE provider_batches SET state = 'submitted', provider_batch_id = $2,
		provider_status = $3, submitted_at = now(), submit_attempts = submit_attempts + 1, error = NULL
		WHERE id = $1 AND state = 'submitting'`, id, b.ID, b.ProviderStatus)
	return err
}

// submitFailed counts a failed create; past MaxSubmitAttempts, or at once
// for an error that asking again cannot fix, the items are settled as
// errored (they go on to the next model).
func (r *Runner) submitFailed(ctx context.Context, m *Model, id int64, cause error) error {
	le := llm.AsError(cause)
	var attempts int
	if err := r.pool.QueryRow(ctx, `UPDATE provider_batches SET submit_attempts = submit_attempts + 1, error = $2
		WHERE id = $1 RETURNING submit_attempts`, id, le.Error()).Scan(&attempts); err != nil {
		return err
	}
	r.log.Warn("provider batch: create failed", "model", m.Name, "intent", id, "attempts", attempts, "err", le)
	if le.Class.Retryable() && attempts < r.cfg.MaxSubmitAttempts {
		return nil
	}
	return r.settleWhole(ctx, m, id, "failed", le.Class, le.Error(), time.Now())
}

// reconcile finishes intents left in state 'submitting' (a crash or a
// failed create): the provider is asked whether it has a batch with the
// intent's label (OpenAI metadata, Gemini displayName), or, where batches
// carry no label (Anthropic), one created after the intent with the same
// number of requests that no row claims. Found: its id is stored. Not
// found: the intent is submitted (again).
func (r *Runner) reconcile(ctx context.Context, m *Model) error {
	type intent struct {
		id      int64
		label   string
		items   int
		created time.Time
	}
	rows, err := r.pool.Query(ctx, `SELECT id, label, items, created_at FROM provider_batches
		WHERE model = $1 AND state = 'submitting' ORDER BY id`, m.Name)
	if err != nil {
		return err
	}
	intents, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (intent, error) {
		var it intent
		return it, row.Scan(&it.id, &it.label, &it.items, &it.created)
	})
	if err != nil {
		return err
	}
	for _, it := range intents {
		list, err := m.Client.ListBatches(ctx, it.created.Add(-r.cfg.ListSkew))
		if err != nil {
			return fmt.Errorf("list batches: %w", err)
		}
		found, err := r.match(ctx, list, it.label, it.items, it.created)
		if err != nil {
			return err
		}
		if found != nil {
			r.log.Warn("provider batch: found a batch whose id was not recorded", "model", m.Name, "label", it.label, "provider_batch", found.ID)
			if err := r.recordSubmitted(ctx, it.id, *found); err != nil {
				return err
			}
			continue
		}
		if err := r.submit(ctx, m, it.id, it.label); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) match(ctx context.Context, list []llm.Batch, label string, items int, created time.Time) (*llm.Batch, error) {
	for i := range list {
		if list[i].Label == label {
			return &list[i], nil
		}
	}
	var cands []llm.Batch
	for _, b := range list {
		if b.Label == "" && b.Total == items && !b.CreatedAt.Before(created.Add(-r.cfg.ListSkew)) {
			cands = append(cands, b)
		}
	}
	// The oldest unclaimed candidate: intents are reconciled oldest first.
	for i := len(cands) - 1; i >= 0; i-- {
		var claimed bool
		if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM provider_batches WHERE provider_batch_id = $1)`, cands[i].ID).Scan(&claimed); err != nil {
			return nil, err
		}
		if !claimed {
			return &cands[i], nil
		}
	}
	return nil, nil
}

// poll checks the submitted batches that are due and ingests those that
// ended.
func (r *Runner) poll(ctx context.Context, m *Model) error {
	type due struct {
		id        int64
		pid       string
		submitted time.Time
	}
	rows, err := r.pool.Query(ctx, `SELECT id, provider_batch_id, submitted_at FROM provider_batches
		WHERE model = $1 AND state = 'submitted' AND (polled_at IS NULL OR polled_at <= now() - make_interval(secs => $2))
		ORDER BY id`, m.Name, m.Limits.PollEvery.Seconds())
	if err != nil {
		return err
	}
	dues, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (due, error) {
		var d due
		return d, row.Scan(&d.id, &d.pid, &d.submitted)
	})
	if err != nil {
		return err
	}
	for _, d := range dues {
		b, err := m.Client.GetBatch(ctx, d.pid)
		if llm.ClassOf(err) == llm.ClassNotFound {
			b = llm.Batch{ID: d.pid, State: llm.BatchFailed, ProviderStatus: "not_found", Error: "the provider no longer knows this batch"}
		} else if err != nil {
			r.log.Warn("provider batch: poll failed", "model", m.Name, "provider_batch", d.pid, "err", err)
			continue
		}
		if _, err := r.pool.Exec(ctx, `UPDATE provider_batches SET provider_status = $2, polled_at = now() WHERE id = $1`, d.id, b.ProviderStatus); err != nil {
			return err
		}
		switch b.State {
		case llm.BatchEnded:
			if err := r.ingest(ctx, m, d.id, d.pid, d.submitted); err != nil {
				return err
			}
		case llm.BatchFailed:
			if err := r.settleWhole(ctx, m, d.id, "failed", prompt.OutcomeServerError, "provider batch failed: "+b.Error, d.submitted); err != nil {
				return err
			}
		}
	}
	return nil
}

// item is a provider_batch_items row being settled.
type item struct {
	job       prompt.Job
	tier      prompt.Tier
	sig       prompt.Signals
	position  int
	delivery  int
	before    int
	rounds    int
	customID  string
	queuedAt  time.Time
	submitted time.Time
	hold      *int64 // budget hold, released with the item's attempt
	canceled  bool   // its batch is canceled: no answer is stored
}

// submittedItems loads up to n items of a provider batch still in state
// 'submitted'.
func (r *Runner) submittedItems(ctx context.Context, pb int64, n int) ([]item, error) {
	rows, err := r.pool.Query(ctx, `SELECT i.job, i.tier, i.signals, i.position, i.delivery, i.attempts_before, i.rounds, i.custom_id,
			i.queued_at, i.budget_hold, coalesce(b.state = 'canceled', false)
		FROM provider_batch_items i LEFT JOIN batches b USING (batch_id)
		WHERE i.provider_batch = $1 AND i.state = 'submitted' ORDER BY i.custom_id LIMIT $2`, pb, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (item, error) {
		var it item
		var tier string
		err := row.Scan(&it.job, &tier, &it.sig, &it.position, &it.delivery, &it.before, &it.rounds, &it.customID, &it.queuedAt, &it.hold, &it.canceled)
		it.tier = prompt.Tier(tier)
		return it, err
	})
}

// ingest reads an ended batch's results and settles its items in chunks,
// each chunk's results, attempts and item states in one transaction; a
// crash between chunks leaves the rest 'submitted', and the next ingest
// settles only those.
func (r *Runner) ingest(ctx context.Context, m *Model, pb int64, pid string, submitted time.Time) error {
	rs, err := m.Client.BatchResults(ctx, pid)
	if err != nil {
		return fmt.Errorf("results of %s: %w", pid, err)
	}
	byID := make(map[string]llm.BatchResult, len(rs))
	for _, res := range rs {
		byID[res.CustomID] = res
	}
	settled, err := r.settleAll(ctx, m, pb, submitted, func(it item) llm.BatchResult {
		if res, ok := byID[it.customID]; ok {
			return res
		}
		return llm.BatchResult{CustomID: it.customID, State: llm.ItemExpired}
	}, pid)
	if err != nil {
		return err
	}
	_, err = r.pool.Exec(ctx, `UPDATE provider_batches SET state = 'done', ended_at = coalesce(ended_at, now()), done_at = now()
		WHERE id = $1`, pb)
	if err == nil {
		r.log.Info("provider batch ingested", "model", m.Name, "provider_batch", pid, "items", settled)
	}
	return err
}

// settleWhole settles every remaining item of a batch that has no results
// (the batch failed, or could not be created) with one outcome.
func (r *Runner) settleWhole(ctx context.Context, m *Model, pb int64, state string, outcome prompt.Outcome, reason string, started time.Time) error {
	_, err := r.settleAll(ctx, m, pb, started, func(it item) llm.BatchResult {
		return llm.BatchResult{CustomID: it.customID, State: llm.ItemErrored, Err: &llm.Error{Class: outcome, Message: reason}}
	}, "")
	if err != nil {
		return err
	}
	_, err = r.pool.Exec(ctx, `UPDATE provider_batches SET state = $2, error = left($3, 500), ended_at = now(), done_at = now() WHERE id = $1`, pb, state, reason)
	return err
}

// settleAll settles the items of a provider batch still 'submitted', a
// chunk per transaction, each with the result result gives it, and returns
// how many it settled. pid is the provider's batch id for request_log ("" when
// the batch never ran).
func (r *Runner) settleAll(ctx context.Context, m *Model, pb int64, started time.Time, result func(item) llm.BatchResult, pid string) (int, error) {
	now := time.Now()
	settled := 0
	for {
		items, err := r.submittedItems(ctx, pb, r.cfg.IngestChunk)
		if err != nil {
			return settled, err
		}
		if len(items) == 0 {
			return settled, nil
		}
		plans := make([]plan, len(items))
		for i, it := range items {
			it.submitted = started
			plans[i] = r.judge(m, it, result(it), pid, now)
		}
		if err := r.commit(ctx, m, pb, plans); err != nil {
			return settled, err
		}
		settled += len(items)
		if h := r.cfg.Hooks.AfterIngestChunk; h != nil {
			h(m.Name, settled)
		}
	}
}

// Cancel asks the provider to cancel submitted provider batch b (cascadectl
// batches cancel) and records the request; the poller ingests what it
// returns, cancelled requests moving on like expired ones.
func Cancel(ctx context.Context, pool *pgxpool.Pool, c Client, b Batch) error {
	if err := c.CancelBatch(ctx, b.ProviderBatchID); err != nil {
		return fmt.Errorf("cancel %s: %w", b.ProviderBatchID, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE provider_batches SET cancel_requested_at = coalesce(cancel_requested_at, now()) WHERE id = $1`, b.ID); err != nil {
		return fmt.Errorf("cancel %s: the provider is cancelling it, but recording that failed: %w", b.ProviderBatchID, err)
	}
	return nil
}

var errLostRace = errors.New("provider batch items were settled by someone else; rolled back")
