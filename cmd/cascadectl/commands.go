package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/input"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/router"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlags("migrate", e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := e.store(ctx) // store() migrates
	if err != nil {
		return err
	}
	vs, err := st.Versions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database is at migration %s (%d applied)\n", last(vs), len(vs))
	return nil
}

func last(vs []string) string {
	if len(vs) == 0 {
		return "none"
	}
	return vs[len(vs)-1]
}

func cmdPing(ctx context.Context, e *env, args []string) error {
	fs := newFlags("ping", e)
	natsOnly := fs.Bool("nats-only", false, "check only NATS")
	pgOnly := fs.Bool("postgres-only", false, "check only Postgres")
	quiet := fs.Bool("quiet", false, "print nothing; the exit status tells")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := e.stdout
	if *quiet {
		out = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	if !*natsOnly {
		st, err := e.open(ctx)
		if err == nil {
			var v string
			err = st.Pool().QueryRow(ctx, "SHOW server_version").Scan(&v)
			if err == nil {
				fmt.Fprintf(out, "postgres: ok (server %s)\n", v)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("postgres: %w", err))
		}
	}
	if !*pgOnly {
		qc, err := e.queue(ctx)
		if err == nil {
			fmt.Fprintf(out, "nats: ok (server %s, JetStream enabled)\n", qc.NATS().ConnectedServerVersion())
		} else {
			errs = append(errs, fmt.Errorf("nats: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		if *quiet {
			return &exitError{1, errors.New("not ready")}
		}
		return err
	}
	return nil
}

// classifyLine is one line of `cascadectl classify` output.
type classifyLine struct {
	ID           string `json:"id"`
	Tier         string `json:"tier"`
	WordCount    int    `json:"word_count"`
	TokenCount   int    `json:"token_count"`
	ComplexHits  int    `json:"complex_hits"`
	ModerateHits int    `json:"moderate_hits"`
	// Score is the learned router's score; absent under the heuristic.
	Score *float64 `json:"score,omitempty"`
}

func cmdClassify(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags("classify", e)
	format := fs.String("format", "auto", "input format: auto, jsonl, openai-batch, csv or text")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	f, err := input.ParseFormat(*format)
	if err != nil {
		return &exitError{2, fmt.Errorf("--format: %w", err)}
	}
	routes, err := e.routes(ctx, "")
	if err != nil {
		return err
	}
	cl, err := routesClassifier(routes)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	w := bufio.NewWriter(e.stdout)
	defer func() { err = errors.Join(err, w.Flush()) }()
	enc := json.NewEncoder(w)
	bad, err := e.eachJob(files, f, w.Flush, func(job prompt.Job) error {
		tier, sig := cl(job.Prompt)
		sig.TokenCount = tokens.Count(job.System) + tokens.Count(job.Prompt)
		line := classifyLine{job.ID, string(tier), sig.WordCount, sig.TokenCount, sig.ComplexHits, sig.ModerateHits, nil}
		if sig.Scored {
			line.Score = &sig.Score
		}
		return enc.Encode(line)
	})
	if err != nil {
		return err
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d bad line(s) skipped", bad)}
	}
	return nil
}

// classifyFunc is a classifier as a function; its Classify method makes it
// an estimate.Classifier.
type classifyFunc func(string) (prompt.Tier, prompt.Signals)

func (f classifyFunc) Classify(text string) (prompt.Tier, prompt.Signals) { return f(text) }

// routesClassifier is the classifier the routes give a worker: the
// heuristic, or the learned router when they name one.
func routesClassifier(routes *config.Routes) (classifyFunc, error) {
	heur, err := classify.New(routes.Classifier)
	if err != nil {
		return nil, err
	}
	l := routes.Learned
	if l == nil {
		return heur.Classify, nil
	}
	rc, err := router.NewClassifier(l.Router, l.Cutoffs, heur)
	if err != nil {
		return nil, err
	}
	return rc.Classify, nil
}

// eachJob reads every file ("-" is stdin) as input of format f and calls fn
// for each good line. A bad line is reported on stderr as file:line: reason
// (after flush, which keeps stdout and stderr in order) and counted.
func (e *env) eachJob(files []string, f input.Format, flush func() error, fn func(prompt.Job) error) (bad int, err error) {
	for _, name := range files {
		var r io.Reader = e.stdin
		display := "stdin"
		if name != "-" {
			fh, err := os.Open(name)
			if err != nil {
				return bad, err
			}
			defer fh.Close()
			r, display = fh, name
		}
		rd, err := input.NewReader(r, display, f, input.Options{})
		if err != nil {
			return bad, err
		}
		for {
			job, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var le *input.LineError
			if errors.As(err, &le) {
				bad++
				if flush != nil {
					if err := flush(); err != nil {
						return bad, err
					}
				}
				fmt.Fprintln(e.stderr, le.Error())
				continue
			}
			if err != nil {
				return bad, err
			}
			if err := fn(job); err != nil {
				return bad, err
			}
		}
	}
	return bad, nil
}
