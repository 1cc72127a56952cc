// Command cascadectl administers promptcascade and reports on its batches.
//
//	cascadectl migrate                      apply database migrations
//	cascadectl ping [--nats-only|--postgres-only] [--quiet]
//	                                        check NATS (>= 2.10, JetStream on) and Postgres
//	cascadectl classify [--format F] [FILE...]
//	                                        print each prompt's tier and signals as JSON lines
//	cascadectl status [BATCH] [--watch] [--until-done]
//	                                        total, done, failed, queued and cost per batch
//	cascadectl report [BATCH] [--format text|markdown|json|csv] [--html FILE] [--limit N]
//	                                        tiers, models, savings, misrouting and warnings;
//	                                        --html writes one self-contained page with charts
//	cascadectl export [BATCH] --format csv|jsonl|openai-batch [--with-text|--no-text] [--status S] [-o FILE]
//	                                        one row per prompt, in input order (csv: the article's
//	                                        RequestLog columns plus ids, status and metadata columns)
//	cascadectl verify [--scan-limit N] [--strict] BATCH
//	                                        reconcile what was enqueued with results and the queue:
//	                                        exit 0 complete, 1 lost/stranded/dead-lettered (--strict:
//	                                        or answered twice), 3 still queued, 4 could not check
//	cascadectl cancel|pause|resume BATCH
//	                                        stop a batch for good, stop spending on it, or go on
//	cascadectl budget BATCH AMOUNT|none     cap a batch's spend (reaching it pauses the batch)
//	cascadectl retry BATCH [--status S] [--tier T] [--model M] [--outcome O] [--routes FILE]
//	                                        answer chosen prompts again (earlier results kept)
//	cascadectl dlq list [--limit N] [--all] [--batch B] [--format table|jsonl]
//	cascadectl dlq replay (--id N ... | --all [--batch B]) [--payload-file F] [--dry-run]
//	                                        inspect or republish dead letters
//	cascadectl maintain [--ahead N]         create request_log's monthly partitions ahead; list them
//	cascadectl prune --older-than 90d [--batch B] [--chunk N] [--dry-run]
//	                                        remove old request_log rows: whole months dropped,
//	                                        the rest deleted in chunks
//	cascadectl router train --labels FILE... [--from-db BATCH...] --out router.json [--seed N] [--cheap M --strong M]
//	                                        train a learned router from labels and batch outcomes
//	cascadectl router eval --labels FILE --router router.json [--format text|json] [--html FILE]
//	                                        accuracy / strong-share curve, APGR, 95% share vs heuristic and random
//	cascadectl labels import [--dataset NAME] [--format auto|csv|jsonl] FILE...
//	                                        store per-prompt correctness labels (RouteLLM CSV, JSONL)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries an exit status with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, env *env, args []string) error
}

var commands = []command{
	{"migrate", "migrate", cmdMigrate},
	{"ping", "ping [--nats-only|--postgres-only] [--quiet]", cmdPing},
	{"classify", "classify [--format auto|jsonl|openai-batch|csv|text] [FILE...]", cmdClassify},
	{"status", "status [BATCH] [--watch] [--until-done] [--interval 1s]", cmdStatus},
	{"report", "report [BATCH] [--format text|markdown|json|csv] [--html FILE] [--limit N]", cmdReport},
	{"export", exportUsage, cmdExport},
	{"verify", "verify [--scan-limit N] [--strict] BATCH", cmdVerify},
	{"router", routerUsage, cmdRouter},
	{"estimate", estimateUsage, cmdEstimate},
	{"cancel", "cancel BATCH", cmdCancel},
	{"pause", "pause BATCH", cmdPause},
	{"resume", "resume BATCH", cmdResume},
	{"budget", budgetUsage, cmdBudget},
	{"retry", retryUsage, cmdRetry},
	{"labels", "labels import [--dataset NAME] [--format auto|csv|jsonl] FILE...", cmdLabels},
	{"maintain", "maintain [--ahead N]", cmdMaintain},
	{"prune", "prune --older-than 90d [--batch B] [--chunk N] [--dry-run]", cmdPrune},
	{"batches", batchesUsage, cmdBatches},
	{"dlq", "dlq list [--limit N] [--all] [--batch B] [--format table|jsonl] | dlq replay (--id N ... | --all [--batch B]) [--payload-file F] [--dry-run]", cmdDLQ},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cascadectl COMMAND [ARGS]")
	for _, c := range commands {
		fmt.Fprintln(w, "  cascadectl", c.usage)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
		defer e.close()
		err := c.run(ctx, e, args[1:])
		if err == nil {
			return 0
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "cascadectl "+c.name+":", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	fmt.Fprintf(stderr, "cascadectl: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func newFlags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("cascadectl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseInterleaved parses flags that may come before or after positional args.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &exitError{2, err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// batchArg parses fs and returns the optional BATCH argument ("" means every
// batch).
func batchArg(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", err
	}
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	}
	return "", &exitError{2, fmt.Errorf("at most one BATCH, got %d", len(pos))}
}

// noArgs parses fs and refuses positional arguments.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", pos[0])}
	}
	return nil
}
