package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// replayOfHeader names the dead letter a replayed message came from.
const replayOfHeader = "Promptcascade-Replay-Of"

// maxPayloadFile bounds --payload-file before the server's own limit is known.
const maxPayloadFile = 64 << 20

// replayPage is how many dead letters (with their payloads) replay holds at once.
const replayPage = 100

func cmdDLQ(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return &exitError{2, errors.New("usage: cascadectl dlq list [--limit N] [--all] [--batch B] [--format table|jsonl] | dlq replay (--id N ... | --all [--batch B]) [--payload-file F] [--dry-run]")}
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, e, args[1:])
	case "replay":
		return dlqReplay(ctx, e, args[1:])
	}
	return &exitError{2, fmt.Errorf("unknown subcommand %q: use list or replay", args[0])}
}

// batchSubjects checks --batch and turns it into the subjects its dead
// letters can be filed under, one per priority (prompts.B, prompts.high.B,
// prompts.low.B: queue.BatchSubjects); nil when no batch was given.
func batchSubjects(ctx context.Context, e *env, batch string) ([]string, error) {
	if batch == "" {
		return nil, nil
	}
	if err := queue.ValidBatchName(batch); err != nil {
		return nil, &exitError{2, fmt.Errorf("--batch: %w", err)}
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	return queue.BatchSubjects(connect.QueueConfig(cfg.NATS).SubjectPrefix, batch), nil
}

// dlqLine is one line of `dlq list --format jsonl`.
type dlqLine struct {
	ID           int64      `json:"id"`
	StreamSeq    uint64     `json:"stream_seq"`
	Subject      string     `json:"subject"`
	Error        string     `json:"error"`
	ReceivedAt   time.Time  `json:"received_at"`
	ReplayedAt   *time.Time `json:"replayed_at"`
	PayloadBytes int        `json:"payload_bytes"`
	Preview      string     `json:"preview"`
}

func dlqList(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags("dlq list", e)
	limit := fs.Int("limit", 100, "show at most N dead letters, oldest first (0: all)")
	all := fs.Bool("all", false, "include dead letters already replayed")
	batch := fs.String("batch", "", "only dead letters of this batch")
	format := fs.String("format", "table", "table or jsonl")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *limit < 0:
		return &exitError{2, fmt.Errorf("--limit: %d is negative", *limit)}
	case *format != "table" && *format != "jsonl":
		return &exitError{2, fmt.Errorf("--format: %q is not table or jsonl", *format)}
	}
	subjects, err := batchSubjects(ctx, e, *batch)
	if err != nil {
		return err
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	f := store.DeadLetterFilter{Subjects: subjects, IncludeReplayed: *all}
	if *limit > 0 {
		f.Limit = *limit + 1 // one more tells whether there are more
	}
	rows, err := st.ListDeadLetters(ctx, f)
	if err != nil {
		return err
	}
	more := *limit > 0 && len(rows) > *limit
	if more {
		rows = rows[:*limit]
	}

	w := bufio.NewWriter(e.stdout)
	defer func() { err = errors.Join(err, w.Flush()) }()
	if *format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			l := dlqLine{ID: r.ID, StreamSeq: r.StreamSeq, Subject: r.Subject, Error: r.Error,
				ReceivedAt: r.ReceivedAt.UTC(), PayloadBytes: r.PayloadSize, Preview: r.Preview}
			if r.Replayed() {
				t := r.ReplayedAt.UTC()
				l.ReplayedAt = &t
			}
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		if *all {
			fmt.Fprintln(w, "no dead letters")
		} else {
			fmt.Fprintln(w, "no dead letters waiting for replay (--all shows replayed ones too)")
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tstream_seq\tsubject\treceived_at\treplayed_at\tbytes\terror\tpreview")
	for _, r := range rows {
		replayed := "-"
		if r.Replayed() {
			replayed = r.ReplayedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.StreamSeq, safe(r.Subject, 64),
			r.ReceivedAt.UTC().Format(time.RFC3339), replayed, r.PayloadSize, safe(r.Error, 60), r.Preview)
	}
	tw.Flush()
	if more {
		fmt.Fprintf(w, "(first %d shown; --limit 0 shows all)\n", *limit)
	}
	return nil
}

// safe escapes s for a terminal (tabs too, which would break the table) and
// cuts it at maxBytes.
func safe(s string, maxBytes int) string { return store.Preview([]byte(s), maxBytes) }

// idList is a repeatable --id flag that also takes comma-separated ids.
type idList []int64

func (l *idList) String() string { return fmt.Sprint([]int64(*l)) }

func (l *idList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a dead letter id (a positive integer)", part)
		}
		if !slices.Contains(*l, id) {
			*l = append(*l, id)
		}
	}
	return nil
}

func dlqReplay(ctx context.Context, e *env, args []string) error {
	fs := newFlags("dlq replay", e)
	var ids idList
	fs.Var(&ids, "id", "dead letter to replay (repeatable, or comma-separated); replayed ones are replayed again")
	all := fs.Bool("all", false, "replay every dead letter not yet replayed")
	batch := fs.String("batch", "", "with --all: only dead letters of this batch")
	payloadFile := fs.String("payload-file", "", "with one --id: publish this file instead of the stored payload (a fixed message)")
	dryRun := fs.Bool("dry-run", false, "show what would be published; publish and change nothing")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	switch {
	case len(ids) == 0 && !*all:
		return &exitError{2, errors.New("choose what to replay: --id N (repeatable) or --all")}
	case len(ids) > 0 && *all:
		return &exitError{2, errors.New("--id and --all: use one or the other")}
	case *batch != "" && !*all:
		return &exitError{2, errors.New("--batch goes with --all")}
	case *payloadFile != "" && len(ids) != 1:
		return &exitError{2, errors.New("--payload-file needs exactly one --id")}
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return err
	}
	subjects, err := batchSubjects(ctx, e, *batch)
	if err != nil {
		return err
	}
	var fixed []byte
	if *payloadFile != "" {
		if fixed, err = readPayloadFile(*payloadFile); err != nil {
			return &exitError{2, fmt.Errorf("--payload-file: %w", err)}
		}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}

	// Select everything first (without payloads) and check every subject:
	// a run that would publish outside the prefix publishes nothing at all.
	sel, err := selectForReplay(ctx, st, ids, subjects)
	if err != nil {
		return err
	}
	prefix := connect.QueueConfig(cfg.NATS).SubjectPrefix
	for _, r := range sel {
		if err := replaySubjectOK(prefix, r.Subject); err != nil {
			return fmt.Errorf("dead letter %d: %w; nothing replayed", r.ID, err)
		}
	}
	if len(sel) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters waiting for replay")
		return nil
	}

	rp := &replayer{e: e, st: st, dryRun: *dryRun, stream: connect.QueueConfig(cfg.NATS).Stream, fixed: fixed, limit: cfg.NATS.MaxPromptBytes}
	if !*dryRun {
		if rp.qc, err = e.queue(ctx); err != nil {
			return err
		}
		rp.limit = rp.qc.MessageLimit()
		if limit := rp.qc.NATS().MaxPayload(); fixed != nil && int64(len(fixed)) > limit {
			return &exitError{2, fmt.Errorf("--payload-file: %d bytes is over the server's max_payload of %d", len(fixed), limit)}
		}
	}
	for chunk := range slices.Chunk(sel, replayPage) {
		page := make([]int64, len(chunk))
		for i, r := range chunk {
			page[i] = r.ID
		}
		rows, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{IDs: page, IncludeReplayed: true, WithPayload: true})
		if err != nil {
			return rp.stopped(err)
		}
		for _, r := range rows {
			if err := rp.replay(ctx, r); err != nil {
				return rp.stopped(fmt.Errorf("dead letter %d: %w", r.ID, err))
			}
		}
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "dry run: would replay %d dead letter(s); nothing published\n", rp.done)
	} else {
		fmt.Fprintf(e.stdout, "replayed %d dead letter(s)\n", rp.done)
	}
	return nil
}

// selectForReplay returns the chosen dead letters (no payloads), by id:
// those of ids, or else every one not yet replayed on subjects (any
// subject when empty). Ids that do not exist are an error.
func selectForReplay(ctx context.Context, st *store.Store, ids []int64, subjects []string) ([]store.DeadLetterRow, error) {
	if len(ids) > 0 {
		rows, err := st.ListDeadLetters(ctx, store.DeadLetterFilter{IDs: ids, IncludeReplayed: true})
		if err != nil {
			return nil, err
		}
		if len(rows) != len(ids) {
			var missing []string
			for _, id := range ids {
				if !slices.ContainsFunc(rows, func(r store.DeadLetterRow) bool { return r.ID == id }) {
					missing = append(missing, strconv.FormatInt(id, 10))
				}
			}
			return nil, fmt.Errorf("no dead letter with id %s; nothing replayed", strings.Join(missing, ", "))
		}
		return rows, nil
	}
	return st.ListDeadLetters(ctx, store.DeadLetterFilter{Subjects: subjects})
}

func readPayloadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPayloadFile+1))
	if err != nil {
		return nil, err
	}
	switch {
	case len(b) > maxPayloadFile:
		return nil, fmt.Errorf("%s is over %d bytes", name, maxPayloadFile)
	case len(b) == 0:
		return nil, fmt.Errorf("%s is empty", name)
	}
	return b, nil
}

// replaySubjectOK accepts only a subject under prefix that a message can be
// published to: prefix, a dot, then tokens without wildcards, spaces or
// control characters. Dead letters come from the stream, so anything else
// means the row was edited or the prefix changed.
func replaySubjectOK(prefix, subject string) error {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok || rest == "" {
		return fmt.Errorf("subject %q is outside the configured prefix %q (NATS_SUBJECT_PREFIX); refusing to publish there", safe(subject, 200), prefix+".")
	}
	for tok := range strings.SplitSeq(rest, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("subject %q is not a subject a message can be published to; refusing to publish there", safe(subject, 200))
		}
	}
	return nil
}

// replayMsgID is the Nats-Msg-Id of a replay: dlq/<id>/<previous replay, in
// Unix microseconds, 0 for the first>/<payload hash>. Running an interrupted
// replay again sends the same id, which JetStream drops as a duplicate within
// its duplicate window; a later replay of the same row, or an edited payload,
// is a new message.
func replayMsgID(r store.DeadLetterRow, payload []byte) string {
	var prev int64
	if r.Replayed() {
		prev = r.ReplayedAt.UnixMicro()
	}
	sum := sha256.Sum256(payload)
	return fmt.Sprintf("dlq/%d/%d/%x", r.ID, prev, sum[:6])
}

type replayer struct {
	e      *env
	st     *store.Store
	qc     *queue.Conn
	stream string
	fixed  []byte
	limit  int // the prompt-size rule's limit, as the workers apply it
	dryRun bool
	done   int
}

// stopped reports how far a failed run got.
func (rp *replayer) stopped(err error) error {
	if rp.dryRun {
		return err
	}
	return fmt.Errorf("%w (stopped after replaying %d; running the same command again is safe)", err, rp.done)
}

// replay republishes one dead letter to its subject and marks it replayed.
// A job that decodes is recorded as enqueued first (as enqueue does), so
// that `cascadectl verify` expects its result.
func (rp *replayer) replay(ctx context.Context, r store.DeadLetterRow) error {
	payload := r.Payload
	if rp.fixed != nil {
		payload = rp.fixed
	}
	msgID := replayMsgID(r, payload)
	job, jobErr := replayableJob(payload, rp.limit)
	var note string
	switch {
	case jobErr != nil:
		note = fmt.Sprintf("; warning: still not a valid job (%s): it will be dead-lettered again", safe(jobErr.Error(), 200))
	default:
		done, err := rp.st.Existing(ctx, []store.Key{{BatchID: job.BatchID, PromptID: job.ID}})
		if err != nil {
			return err
		}
		if len(done) > 0 {
			note = fmt.Sprintf("; note: %s/%s already has a result, the worker will ack it without calling a model", job.BatchID, safe(job.ID, 64))
		}
	}
	out := rp.e.stdout
	if rp.dryRun {
		fmt.Fprintf(out, "dead letter %d: would publish %d bytes to %s (Nats-Msg-Id %s)%s\n", r.ID, len(payload), safe(r.Subject, 200), msgID, note)
		rp.done++
		return nil
	}
	if jobErr == nil {
		// No content hash: a replayed payload may have been fixed, and it
		// stands for the id whatever enqueue recorded.
		if _, err := rp.st.RecordEnqueued(ctx, job.BatchID, []store.Enqueued{{ID: job.ID}}); err != nil {
			return err
		}
	}
	ack, err := rp.qc.PublishRaw(ctx, r.Subject, payload, msgID, map[string]string{replayOfHeader: strconv.FormatInt(r.ID, 10)})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", safe(r.Subject, 200), err)
	}
	if ack.Stream != rp.stream {
		note += fmt.Sprintf("; warning: stored by stream %s, not %s (NATS_STREAM)", ack.Stream, rp.stream)
	}
	if err := rp.st.MarkReplayed(ctx, []int64{r.ID}); err != nil {
		return err
	}
	rp.done++
	if ack.Duplicate {
		fmt.Fprintf(out, "dead letter %d: already published by an earlier, interrupted replay (Nats-Msg-Id %s); marked replayed%s\n", r.ID, msgID, note)
		return nil
	}
	fmt.Fprintf(out, "dead letter %d: replayed to %s as stream sequence %d%s\n", r.ID, safe(r.Subject, 200), ack.Sequence, note)
	return nil
}

// replayableJob decodes a payload as enqueue would have published it; an
// error means the worker will dead-letter it again.
func replayableJob(payload []byte, limit int) (prompt.Job, error) {
	job, err := queue.DecodeJob(payload, limit)
	if err != nil {
		return job, err
	}
	if err := queue.ValidBatchName(job.BatchID); err != nil {
		return job, err
	}
	if err := queue.ValidJobID(job.ID); err != nil {
		return job, err
	}
	return job, nil
}
