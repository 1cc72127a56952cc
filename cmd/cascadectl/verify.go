package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// Exit statuses of `cascadectl verify` (2 is a usage or configuration
// error, as for every command).
const (
	verifyComplete   = 0 // every enqueued prompt has its one result
	verifyLost       = 1 // lost, stranded or dead-lettered (with --strict: answered twice): someone must act
	verifyIncomplete = 3 // nothing lost, but prompts are still queued: wait and run again
	verifyUnable     = 4 // could not check: unknown batch, Postgres or NATS unreachable
)

// defaultScanLimit is how many queued messages of a batch verify reads, at
// most, to tell exactly which missing prompts are still queued.
const defaultScanLimit = 10000

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags("verify", e)
	scanLimit := fs.Int("scan-limit", defaultScanLimit,
		"read at most this many queued messages to tell still-queued prompts from lost ones exactly (0: count only)")
	strict := fs.Bool("strict", false, "also exit 1 when a prompt was answered (and paid for) more than once")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &exitError{2, errors.New("usage: cascadectl verify [--scan-limit N] [--strict] BATCH")}
	}
	batch := pos[0]
	if err := queue.ValidBatchName(batch); err != nil {
		return &exitError{2, err}
	}
	cfg, err := e.config(ctx)
	if err != nil {
		return err
	}
	subjects := queue.BatchSubjects(connect.QueueConfig(cfg.NATS).SubjectPrefix, batch)

	// The stream is read before Postgres. A message leaves the stream only
	// when acked, after its result is committed, so a prompt seen neither in
	// the stream nor, later, in results is really lost, never merely finishing.
	qc, err := e.queue(ctx)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	bq, err := qc.ReadBatch(ctx, batch, *scanLimit)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	st, err := e.store(ctx)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	v, err := st.Verify(ctx, batch)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	if v.Enqueued == 0 && v.Done() == 0 {
		return &exitError{verifyUnable, fmt.Errorf("no batch %q: enqueue recorded nothing under that name and there are no results", batch)}
	}
	dead, err := deadLetteredIDs(ctx, st, subjects, batch)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	prio, err := st.BatchPriority(ctx, batch)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	subject := queue.PrioritySubject(connect.QueueConfig(cfg.NATS).SubjectPrefix, prio, batch)

	var queuedIDs []string
	if bq.Scanned {
		queuedIDs = bq.IDs
	}
	acct, err := st.AccountMissing(ctx, batch, queuedIDs, dead)
	if err != nil {
		return &exitError{verifyUnable, err}
	}
	// acct is a later snapshot than v: prompts answered in between were
	// queued when the stream was read, so they count as queued.
	deadN := acct.DeadLettered
	lost, lostSample, exact := acct.Lost, acct.LostSample, true
	if !bq.Scanned {
		// Counts only: every message on the subject may be a missing
		// prompt's, so lost is a lower bound until the subject is empty.
		queuedHere := min(uint64(lost), bq.Messages)
		lost -= int64(queuedHere)
		exact = bq.Messages == 0
		if !exact {
			lostSample = nil
		}
	}
	queued, stranded := splitQueued(v.Missing, lost, acct, bq.ConsumerIdle)

	r := verifyReport{v: v, subject: subject, consumer: connect.QueueConfig(cfg.NATS).Consumer, queue: bq, queued: queued, stranded: stranded,
		dead: deadN, lost: lost, lostSample: lostSample, exact: exact, strict: *strict,
		parked: acct.Parked, canceled: acct.Canceled, atProvider: acct.AtProvider}
	r.print(e.stdout)
	switch {
	case r.problem():
		return &exitError{verifyLost, fmt.Errorf("batch %s: %s", batch, r.problems())}
	case queued > 0:
		return &exitError{verifyIncomplete, fmt.Errorf("batch %s: %d prompt(s) still queued; run verify again once workers have drained it", batch, queued)}
	case acct.AtProvider > 0:
		return &exitError{verifyIncomplete, fmt.Errorf("batch %s: %d prompt(s) wait at a provider's batch API; run verify again once their provider batches are ingested (cascadectl batches)", batch, acct.AtProvider)}
	case acct.Parked > 0:
		return &exitError{verifyIncomplete, fmt.Errorf("batch %s is paused: %d prompt(s) set aside; `cascadectl resume %s` queues them again", batch, acct.Parked, batch)}
	}
	return nil
}

// splitQueued tells, of the prompts v (the earlier snapshot, missing
// vMissing) counted as missing, how many are still queued and how many are
// stranded: stored in the stream, but the consumer, idle when the stream was
// read, will never deliver them again (MaxDeliver reached without a result).
// acct is the later snapshot; lost is its lost count after the stream's
// messages were set against it.
//
// A prompt answered between the two snapshots counts as queued (it was not
// done in v, and is not missing in acct). It is never stranded: the provider
// batch poller answers prompts with no message in the stream at all, so an
// idle consumer says nothing about them.
func splitQueued(vMissing, lost int64, acct store.MissingAccount, consumerIdle bool) (queued, stranded int64) {
	queued = max(vMissing-acct.DeadLettered-lost-acct.Parked-acct.Canceled-acct.AtProvider-acct.HandedBack, 0)
	if consumerIdle {
		answeredSince := min(max(vMissing-acct.Missing, 0), queued)
		stranded, queued = queued-answeredSince, answeredSince
	}
	// Prompts the provider batch poller republished after the stream was
	// read are queued, whatever the consumer said before.
	return queued + acct.HandedBack, stranded
}

// deadLetteredIDs returns the prompt ids of batch among the dead letters on
// its subjects (one per priority) that were not replayed.
func deadLetteredIDs(ctx context.Context, st *store.Store, subjects []string, batch string) ([]string, error) {
	var ids []string
	f := store.DeadLetterFilter{Subjects: subjects, WithPayload: true, Limit: 200}
	for {
		rows, err := st.ListDeadLetters(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if id, ok := queue.JobID(r.Payload, batch); ok {
				ids = append(ids, id)
			}
		}
		if len(rows) < f.Limit {
			return ids, nil
		}
		f.AfterID = rows[len(rows)-1].ID
	}
}

type verifyReport struct {
	v          store.Verification
	subject    string
	consumer   string
	queue      queue.BatchQueue
	queued     int64
	stranded   int64
	dead       int64
	lost       int64
	lostSample []string
	exact      bool
	strict     bool  // answered twice is a problem too
	parked     int64 // set aside while the batch is paused
	canceled   int64 // unanswered when the batch was canceled: accounted for
	atProvider int64 // waiting for or at a provider's batch API
}

// problem reports whether someone must act: waiting will not complete the
// batch. A prompt answered twice has its one result; the second answer is
// the price of at-least-once delivery (a delivery that outlived AckWait), so
// it fails verify only with --strict.
func (r verifyReport) problem() bool {
	return r.lost > 0 || r.stranded > 0 || r.dead > 0 || (r.strict && r.v.AnsweredTwice > 0)
}

func (r verifyReport) problems() string {
	var p []string
	if r.lost > 0 {
		p = append(p, fmt.Sprintf("%d prompt(s) lost", r.lost))
	}
	if r.stranded > 0 {
		p = append(p, fmt.Sprintf("%d prompt(s) stranded in the stream", r.stranded))
	}
	if r.dead > 0 {
		p = append(p, fmt.Sprintf("%d prompt(s) dead-lettered", r.dead))
	}
	if r.strict && r.v.AnsweredTwice > 0 {
		p = append(p, fmt.Sprintf("%d prompt(s) answered twice", r.v.AnsweredTwice))
	}
	return strings.Join(p, ", ")
}

func (r verifyReport) print(w io.Writer) {
	v := r.v
	verdict := "complete"
	switch {
	case r.problem():
		verdict = "PROBLEM: " + r.problems()
	case r.queued > 0:
		verdict = "incomplete: prompts still queued, nothing lost"
	case r.atProvider > 0:
		verdict = "incomplete: prompts wait at a provider's batch API, nothing lost"
	case r.parked > 0:
		verdict = "incomplete: batch paused, nothing lost"
	case r.canceled > 0:
		verdict = "complete (canceled)"
	}
	if v.AnsweredTwice > 0 && !r.strict {
		verdict += fmt.Sprintf(" (%d prompt(s) answered more than once: see duplicated answers)", v.AnsweredTwice)
	}
	fmt.Fprintf(w, "batch %s: %s\n", v.BatchID, verdict)
	row := func(label string, n int64, note string) {
		if note != "" {
			note = "  " + note
		}
		fmt.Fprintf(w, "  %-19s %9d%s\n", label, n, note)
	}
	row("enqueued", v.Enqueued, "")
	row("done", v.Done(), fmt.Sprintf("(succeeded %d, failed %d)", v.Succeeded, v.Failed))
	qnote := ""
	switch {
	case r.queue.StreamMissing:
		qnote = "(the stream does not exist)"
	case r.queue.Messages > 0:
		qnote = fmt.Sprintf("(%d message(s) on %s)", r.queue.Messages, r.subject)
		if r.queue.ConsumerMissing {
			qnote += fmt.Sprintf("; consumer %s does not exist, a worker creates it at start", r.consumer)
		}
	}
	row("still queued", r.queued, qnote)
	if r.atProvider > 0 {
		row("at a provider", r.atProvider, "(in or waiting for a provider batch; cascadectl batches list)")
	}
	if r.parked > 0 {
		row("paused", r.parked, "(set aside without a model call; cascadectl resume "+v.BatchID+" queues them again)")
	}
	if r.canceled > 0 {
		row("canceled", r.canceled, "(no result: the batch was canceled)")
	}
	if r.stranded > 0 {
		row("stranded", r.stranded, fmt.Sprintf("(consumer %s will not deliver them again: MaxDeliver reached without a result; see README, Operations)", r.consumer))
	}
	dnote := ""
	if r.dead > 0 {
		dnote = "(cascadectl dlq list --batch " + v.BatchID + "; fix, then dlq replay)"
	}
	row("dead-lettered", r.dead, dnote)
	lnote := ""
	switch {
	case !r.exact:
		lnote = fmt.Sprintf("(at least; exact once %s is drained, or with --scan-limit >= %d)", r.subject, r.queue.Messages)
	case r.lost > 0:
		lnote = "e.g. " + safeList(r.lostSample)
	}
	row("lost", r.lost, lnote)
	dupNote := ""
	if v.AnsweredTwice > 0 {
		dupNote = "(paid for more than one successful answer, e.g. a delivery outlived NATS_ACK_WAIT; results keep one)"
	}
	row("duplicated answers", v.AnsweredTwice, dupNote)
	fmt.Fprintf(w, "  %-19s %9s  (%d attempt(s) outside the stored results)\n", "extra spend", fmt.Sprintf("$%.6f", v.ExtraCostUSD), v.ExtraAttempts)
	if v.Unexpected > 0 {
		row("not enqueued", v.Unexpected, "(results whose id enqueue did not record, e.g. "+safeList(v.UnexpectedSample)+")")
	}
	if r.lost > 0 {
		fmt.Fprintln(w, "lost prompts have neither a result nor a message. Run the same enqueue command again: answered prompts are")
		fmt.Fprintln(w, "skipped without a model call. An id whose message was published and then lost is dropped as a duplicate")
		fmt.Fprintln(w, "until NATS_DUPLICATE_WINDOW has passed since it was published.")
	}
}

// safeList joins user-supplied ids for a terminal, each escaped and cut short.
func safeList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = store.Preview([]byte(id), 64)
	}
	return strings.Join(out, ", ")
}
