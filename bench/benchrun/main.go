// Command benchrun is `make bench`: it runs the real binaries (bin/enqueue,
// bin/worker, bin/ceiling) against one nats-server (bin/nats-server, started
// here) and the machine's Postgres (a scratch schema of TEST_DATABASE_URL),
// prints one table and rewrites the bench section of BENCHMARKS.md.
//
//	benchrun [-o BENCHMARKS.md] [-small 1000000] [-big 10000000] [-tails 10000]
//	         [-backlog 1000000] [-high 1000] [-rows ceiling,enqueue,...]
//
// -keep leaves the scratch schema for a look at results and request_log.
// -rows runs only the named groups of rows (for a quick look while
// developing; the table written is then partial): ceiling, enqueue, worker,
// workers3, occupancy, classifier, ratelimited, tails, priority, profile.
//
// The worker runs take their input from a direct publish (as the ceiling
// does), not from bin/enqueue, so that they do not wait on enqueue's
// per-line duplicate check in Postgres.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/promptcascade/promptcascade/bench/internal/proc"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promptcascade/promptcascade/internal/classify"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/openai/openaitest"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/prompt"
	"github.com/promptcascade/promptcascade/internal/queue"
)

type bench struct {
	stopNATS                             func()
	natsPID                              int
	bin, tmp, natsURL, dsn, base, schema string
	rows                                 [][2]string
	notes                                []string
	profileTop                           string
	only                                 map[string]bool // -rows; nil: all
	keep                                 bool            // -keep: leave the scratch schema
	workerProfile                        string          // -worker-profile: CPU profile of the sim-latency-0 worker
	occProfile                           string          // -occupancy-profile: CPU profiles of the occupancy rows' workers (FILE-<slots>)
	occSlots                             []int           // -occupancy-slots: the occupancy rows run
	pairs                                int             // -pairs: back-to-back ceiling + worker runs
}

// sizes are the run's sizes, from the flags.
type sizes struct {
	small, big int // enqueue lines
	tails      int // prompts of the tail run
	backlog    int // normal prompts queued ahead of the high batch
	high       int // prompts of the high batch
}

// groups are the -rows names, in the order they run.
var groups = []string{"ceiling", "enqueue", "worker", "workers3", "occupancy", "classifier", "ratelimited", "tails", "priority", "profile"}

// want reports whether the group of rows named g runs.
func (b *bench) want(g string) bool { return b.only == nil || b.only[g] }

func main() {
	out := flag.String("o", "BENCHMARKS.md", "file whose bench section is rewritten")
	small := flag.Int("small", 1_000_000, "lines of the small enqueue run")
	big := flag.Int("big", 10_000_000, "lines of the large enqueue run")
	tails := flag.Int("tails", 10_000, "prompts of the tail run (default routes, sim fault rates)")
	backlog := flag.Int("backlog", 1_000_000, "normal prompts queued ahead of the high-priority batch")
	high := flag.Int("high", 1000, "prompts of the high-priority batch")
	keep := flag.Bool("keep", false, "keep the scratch schema (bench_<pid>_<ns>) for a look at results and request_log")
	workerProfile := flag.String("worker-profile", "", "write a CPU profile of the worker in the sim-latency-0 row (worker --cpuprofile) to this file")
	occProfile := flag.String("occupancy-profile", "", "write a CPU profile of the worker of each occupancy row to this file with -<slots> appended (worker --cpuprofile)")
	occSlots := flag.String("occupancy-slots", "1000,5000", "comma-separated slot counts of the occupancy rows")
	pairs := flag.Int("pairs", 3, "back-to-back ceiling + worker (sim latency 0) pairs whose ratios the worker group also prints (0: none)")
	rows := flag.String("rows", "", "comma-separated groups of rows to run (default all): "+strings.Join(groups, ","))
	flag.Parse()
	b := &bench{bin: "bin", base: os.Getenv("TEST_DATABASE_URL"), keep: *keep, workerProfile: *workerProfile, occProfile: *occProfile, pairs: *pairs}
	for _, f := range strings.Split(*occSlots, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "benchrun: -occupancy-slots: %q is not a slot count\n", f)
			os.Exit(2)
		}
		b.occSlots = append(b.occSlots, n)
	}
	if *rows != "" {
		b.only = map[string]bool{}
		for _, g := range strings.Split(*rows, ",") {
			if !slices.Contains(groups, g) {
				fmt.Fprintf(os.Stderr, "benchrun: -rows: unknown group %q; want some of %s\n", g, strings.Join(groups, ","))
				os.Exit(2)
			}
			b.only[g] = true
		}
	}
	sz := sizes{small: *small, big: *big, tails: *tails, backlog: *backlog, high: *high}
	if err := b.run(*out, sz); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func (b *bench) add(what, result string) {
	b.rows = append(b.rows, [2]string{what, result})
	fmt.Printf("| %s | %s |\n", what, result)
}

func (b *bench) run(out string, sz sizes) error {
	ctx := context.Background()
	var err error
	if b.tmp, err = os.MkdirTemp("", "promptcascade-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	stop, err := b.startNATS()
	if err != nil {
		return err
	}
	defer stop()
	dropSchema, err := b.makeSchema(ctx)
	if err != nil {
		return err
	}
	if b.keep {
		fmt.Fprintf(os.Stderr, "benchrun: the scratch schema %s is kept (-keep)\n", b.schema)
	} else {
		defer dropSchema()
	}
	fmt.Println("| what | result |\n| --- | --- |")

	// 1. Ceiling. Without it (-rows) the ratios to it are left out.
	var ceil ceiling
	if b.want("ceiling") {
		var err error
		if ceil, err = b.ceiling(); err != nil {
			return err
		}
		b.add("ceiling: bare async publish (300k jobs)", fmt.Sprintf("%.0f/s; CPU µs per job: publisher %.1f, nats-server %.1f",
			ceil.Publish, ceil.PublishCPU, ceil.PublishServerCPU))
		b.add("ceiling: bare consume + batched COPY of two rows + ack (300k)", fmt.Sprintf("%.0f/s; CPU µs per job: consumer %.1f, nats-server %.1f, Postgres backends %.1f",
			ceil.Work, ceil.WorkCPU, ceil.WorkServerCPU, ceil.WorkPostgresCPU))
	}

	// 2. Enqueue at two sizes: rate and peak RSS, each against a bare
	// publish of the same number of jobs into a fresh server (nats-server's
	// CPU per message grows with the ids in the duplicate window, so the
	// 300k-job ceiling above is no reference at 10M).
	if b.want("enqueue") {
		var rss1 int64
		for i, n := range []int{sz.small, sz.big} {
			bare, err := b.barePublish(n)
			if err != nil {
				return err
			}
			b.add(fmt.Sprintf("bare async publish, %s jobs (the reference of the next row)", count(n)),
				fmt.Sprintf("%.0f/s; CPU µs per job: publisher %.1f, nats-server %.1f", bare.Publish, bare.PublishCPU, bare.PublishServerCPU))
			file, err := b.jsonl(n)
			if err != nil {
				return err
			}
			// CPU per line of each process: load-robust, where the rate
			// on a shared machine is not.
			const app = "benchrun_enqueue"
			pg, err := b.samplePostgres(ctx, app)
			if err != nil {
				return err
			}
			nats0 := proc.CPU(b.natsPID)
			r, err := b.cmd([]string{"DATABASE_URL=" + withApp(b.dsn, app)}, b.bin+"/enqueue", "--quiet", "--batch", fmt.Sprint("enq", i), file)
			pgCPU, natsCPU := pg.total(), proc.CPU(b.natsPID)-nats0
			if err != nil {
				return err
			}
			os.Remove(file)
			rate := float64(n) / r.wall.Seconds()
			line := fmt.Sprintf("%.0f prompts/s (%.2f× the bare publish of %s jobs%s), peak RSS %s; CPU µs per line: enqueue %s, nats-server %s, Postgres backends %s",
				rate, rate/bare.Publish, count(n), ratioText(rate, ceil.Publish, "that of 300k"), mb(r.maxRSS), perLine(r.cpu, n), perLine(natsCPU, n), perLine(pgCPU, n))
			if i == 0 {
				rss1 = r.maxRSS
			} else {
				line += fmt.Sprintf(" (%+.0f%% vs %s)", 100*(float64(r.maxRSS)/float64(rss1)-1), count(sz.small))
			}
			b.add(fmt.Sprintf("enqueue, %s lines", count(n)), line)
			if err := b.purge(ctx); err != nil {
				return err
			}
		}
	}

	// 3. Worker at sim latency 0: rate, CPU per prompt, RSS.
	const n0 = 200_000
	routes0, err := b.routes("instant", 0)
	if err != nil {
		return err
	}
	if b.want("worker") {
		if err := b.enqueue("w0", n0, ""); err != nil {
			return err
		}
		const app = "benchrun_worker"
		pg, err := b.samplePostgres(ctx, app)
		if err != nil {
			return err
		}
		nats0 := proc.CPU(b.natsPID)
		r, err := b.worker(routes0, 1024, "w0", 1, b.workerProfile, "DATABASE_URL="+withApp(b.dsn, app))
		pgCPU, natsCPU := pg.total(), proc.CPU(b.natsPID)-nats0
		if err != nil {
			return err
		}
		simCPU := simAnswerCPU()
		cpu := r.cpu.Seconds() * 1e6 / n0
		rate := n0 / r.wall.Seconds()
		b.add("worker, sim latency 0, 1 worker × 1,024 in flight (200k prompts)",
			fmt.Sprintf("%.0f prompts/s%s; CPU %.0f µs/prompt (%.0f µs without the simulator's answer generation, %.0f µs); nats-server %s µs, Postgres backends %s µs per prompt; peak RSS %s",
				rate, ratio(rate, ceil.Work, "the ceiling"), cpu, cpu-simCPU, simCPU, perLine(natsCPU, n0), perLine(pgCPU, n0), mb(r.maxRSS)))
		if err := b.purge(ctx); err != nil {
			return err
		}
		if b.pairs > 0 {
			ratios, err := b.workerPairs(routes0, n0)
			if err != nil {
				return err
			}
			b.add(fmt.Sprintf("worker, sim latency 0 ÷ ceiling's work rate, %d back-to-back pairs (the ceiling, then the worker on 200k prompts)", b.pairs),
				fmt.Sprintf("%s (median %.2f×)", strings.Join(ratios.each, ", "), ratios.median))
		}
	}

	// 4. Three workers on the same batch size.
	if b.want("workers3") {
		if err := b.enqueue("w3", n0, ""); err != nil {
			return err
		}
		r, err := b.worker(routes0, 1024, "w3", 3, "")
		if err != nil {
			return err
		}
		b.add("worker, sim latency 0, 3 workers × 1,024 in flight (200k prompts, 2 cores)", fmt.Sprintf("%.0f prompts/s", n0/r.wall.Seconds()))
		if err := b.purge(ctx); err != nil {
			return err
		}
	}

	// 5. Occupancy on a 200 ms model.
	routes200, err := b.routes("slow", 200*time.Millisecond)
	if err != nil {
		return err
	}
	if b.want("occupancy") {
		// The "200 ms model": calls that average 200 ms on these
		// prompts (callMean), not the sim setting of 200 ms, whose calls
		// average about 131 ms on their short answers.
		setting, err := callMean(200 * time.Millisecond)
		if err != nil {
			return err
		}
		routesOcc, err := b.routes("occ", setting)
		if err != nil {
			return err
		}
		// 120 rounds of 200 ms at either slot count: filling the slots at
		// the start and the last round's drain (slots going idle as the
		// queue runs out, the slowest calls last) weigh 1/120 in both rows.
		// Each row also prints the occupancy of a worker without overhead
		// on the same cascades (occupancy.ideal), which only that edge
		// keeps below 1. At 60 rounds it was 0.945-0.957 on 5,000 slots
		// (the slowest of the last 5,000 calls end ~3 rounds after the
		// queue runs dry): no worker could be sure of 0.95 there.
		const rounds = 120
		for _, slots := range b.occSlots {
			c := struct{ slots, n int }{slots, slots * rounds}
			batch := fmt.Sprint("occ", c.slots)
			if err := b.enqueue(batch, c.n, ""); err != nil {
				return err
			}
			prof := ""
			if b.occProfile != "" {
				prof = fmt.Sprint(b.occProfile, "-", c.slots)
			}
			r, err := b.worker(routesOcc, c.slots, batch, 1, prof)
			if err != nil {
				return err
			}
			occ, err := b.occupancy(ctx, batch, c.slots)
			if err != nil {
				return err
			}
			rate := float64(c.n) / r.wall.Seconds()
			b.add(fmt.Sprintf("occupancy, %s in flight on a 200 ms model (%s prompts, %d rounds; sim latency %s, calls average 200 ms on these prompts)", count(c.slots), count(c.n), rounds, setting),
				fmt.Sprintf("%.3f (Σ cascade time / (slots × wall)); %.3f counting only model calls; %.3f for a worker without overhead on the same cascades; %.0f prompts/s; worker CPU %.0f µs/prompt; calls averaged %.0f ms, so 0.95 of these slots needs %.0f prompts/s (Little's law)",
					occ.cascade, occ.calls, occ.ideal, rate, r.cpu.Seconds()*1e6/float64(c.n), occ.meanCall*1e3, 0.95*float64(c.slots)/occ.meanCall))
			if err := b.purge(ctx); err != nil {
				return err
			}
		}
	}

	// 6. Classifier per core.
	if b.want("classifier") {
		b.add("classifier (heuristic), one core", fmt.Sprintf("%.2fM prompts/s", classifyRate()/1e6))
	}

	// 7. Rate-limited provider shared by 3 workers.
	if b.want("ratelimited") {
		if err := b.rateLimited(ctx); err != nil {
			return err
		}
	}

	// 8. Tails: a batch on the default routes with the sim's fault rates.
	if b.want("tails") {
		if err := b.tails(ctx, sz.tails); err != nil {
			return err
		}
	}

	// 9. A high-priority batch behind a backlog of normal prompts.
	if b.want("priority") {
		if err := b.priority(ctx, sz.backlog, sz.high, routes200); err != nil {
			return err
		}
	}

	// 10. Where the worker's CPU goes.
	if b.want("profile") {
		top, err := b.profile()
		if err != nil {
			return err
		}
		fmt.Println(top)
		b.profileTop = top
	}
	return b.write(out)
}

// ceiling is bin/ceiling's output.
type ceiling struct {
	Publish          float64 `json:"publish_per_s"`
	Work             float64 `json:"work_per_s"`
	PublishCPU       float64 `json:"publish_cpu_us"`
	PublishServerCPU float64 `json:"publish_server_cpu_us"`
	WorkCPU          float64 `json:"work_cpu_us"`
	WorkServerCPU    float64 `json:"work_server_cpu_us"`
	WorkPostgresCPU  float64 `json:"-"` // µs per job of its Postgres backends, sampled by benchrun
}

// barePublish runs bin/ceiling -publish-only with n jobs on a fresh
// nats-server, which it leaves fresh for the next run.
func (b *bench) barePublish(n int) (ceiling, error) {
	var c ceiling
	if err := b.restartNATS(); err != nil {
		return c, err
	}
	r, err := b.cmd(nil, b.bin+"/ceiling", "-nats", b.natsURL, "-publish-only", "-n", strconv.Itoa(n), "-server-pid", strconv.Itoa(b.natsPID))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(r.stdout, &c); err != nil {
		return c, fmt.Errorf("ceiling output %q: %w", r.stdout, err)
	}
	return c, b.restartNATS()
}

// ratioText is ", x.xx× what", or nothing when the reference was not
// measured.
func ratioText(x, ref float64, what string) string {
	if ref <= 0 {
		return ""
	}
	return fmt.Sprintf(", %.2f× %s", x/ref, what)
}

// ratio is " (x.xx× what)", or nothing when the reference was not measured.
func ratio(x, ref float64, what string) string {
	if ref <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.2f× %s)", x/ref, what)
}

type result struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
	stdout    []byte
}

// cmd runs a binary with the bench's NATS and Postgres in its environment.
func (b *bench) cmd(env []string, name string, args ...string) (result, error) {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), "NATS_URL="+b.natsURL, "DATABASE_URL="+b.dsn, "LOG_LEVEL=warn")
	c.Env = append(c.Env, env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := result{wall: time.Since(start), stdout: stdout.Bytes()}
	if err != nil {
		return r, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(stderr.String()))
	}
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, nil
}

// ceiling runs bench/ceiling on 300k jobs.
func (b *bench) ceiling() (ceiling, error) {
	var c ceiling
	const app, n = "benchrun_ceiling", 300_000
	pg, err := b.samplePostgres(context.Background(), app)
	if err != nil {
		return c, err
	}
	r, err := b.cmd(nil, b.bin+"/ceiling", "-nats", b.natsURL, "-db", withApp(b.dsn, app), "-n", strconv.Itoa(n), "-server-pid", strconv.Itoa(b.natsPID))
	pgCPU := pg.total()
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(r.stdout, &c); err != nil {
		return c, fmt.Errorf("ceiling output %q: %w", r.stdout, err)
	}
	c.WorkPostgresCPU = float64(pgCPU.Microseconds()) / n
	return c, nil
}

type pairRatios struct {
	each   []string // "0.52× (41.2k / 79.1k)"
	median float64
}

// workerPairs runs the ceiling and, right after it, one worker × 1,024 on
// n prompts at sim latency 0, b.pairs times, and returns the ratios of the
// worker's rate to the ceiling's work rate. On a shared machine either rate
// moves by ±10% from one run to the next; back-to-back pairs and their
// median say more than one ratio of two runs minutes apart.
func (b *bench) workerPairs(routes string, n int) (pairRatios, error) {
	var out pairRatios
	var rs []float64
	for i := range b.pairs {
		c, err := b.ceiling()
		if err != nil {
			return out, err
		}
		if err := b.purge(context.Background()); err != nil {
			return out, err
		}
		batch := fmt.Sprint("pair", i)
		if err := b.enqueue(batch, n, ""); err != nil {
			return out, err
		}
		r, err := b.worker(routes, 1024, batch, 1, "")
		if err != nil {
			return out, err
		}
		if err := b.purge(context.Background()); err != nil {
			return out, err
		}
		rate := float64(n) / r.wall.Seconds()
		rs = append(rs, rate/c.Work)
		out.each = append(out.each, fmt.Sprintf("%.2f× (%.1fk / %.1fk)", rate/c.Work, rate/1e3, c.Work/1e3))
	}
	out.median = median(rs)
	return out, nil
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// worker runs n worker processes on batch until the queue is idle; wall is
// the longest, cpu the sum, maxRSS the largest. With a profile file (n = 1)
// the worker writes its CPU profile there (--cpuprofile).
func (b *bench) worker(routes string, slots int, batch string, n int, profile string, extraEnv ...string) (result, error) {
	env := []string{"ROUTES_FILE=" + routes, "WORKER_CONCURRENCY=" + strconv.Itoa(slots), "WORKER_EXIT_WHEN_IDLE=true",
		"NATS_MAX_ACK_PENDING=" + strconv.Itoa(4*n*slots+4096)}
	env = append(env, extraEnv...)
	type done struct {
		r   result
		err error
	}
	ch := make(chan done, n)
	for i := range n {
		go func() {
			var args []string
			if profile != "" {
				args = []string{"--cpuprofile", profile}
			}
			r, err := b.cmd(append(env, fmt.Sprint("WORKER_ID=", batch, "-", i)), b.bin+"/worker", args...)
			ch <- done{r, err}
		}()
	}
	var sum result
	for range n {
		d := <-ch
		if d.err != nil {
			return sum, d.err
		}
		sum.wall = max(sum.wall, d.r.wall)
		sum.cpu += d.r.cpu
		sum.maxRSS = max(sum.maxRSS, d.r.maxRSS)
	}
	return sum, nil
}

// enqueue publishes n simple jobs of batch straight to the stream, at
// priority p ("": normal).
func (b *bench) enqueue(batch string, n int, p string) error {
	ctx := context.Background()
	qc, err := queue.Connect(ctx, queue.Config{URL: b.natsURL}, nil)
	if err != nil {
		return err
	}
	defer qc.Close()
	if _, err := qc.EnsureStream(ctx); err != nil {
		return err
	}
	pub := queue.NewPublisher(qc, 4096)
	for i := range n {
		j := prompt.Job{BatchID: batch, ID: strconv.Itoa(i), Prompt: benchPrompt(i), Priority: p, EnqueuedAt: time.Now()}
		if err := pub.Publish(ctx, j); err != nil {
			return err
		}
	}
	_, err = pub.Wait(ctx)
	return err
}

// benchPrompt is the i-th prompt of the batches enqueue publishes.
func benchPrompt(i int) string { return fmt.Sprintf("What is %d plus %d? Answer briefly.", i, i) }

// callMean is the sim latency setting whose calls on benchPrompt's prompts
// average mean. A sim model's latency is the mean of a call with a typical
// 150-token answer (half of it grows with the answer's length); these
// prompts get short answers, so their calls are faster than the setting:
// about 131 ms at 200 ms. It asks the simulator itself for the answers of
// the first 2,000 prompts (latency 0, seeds 1..2000) and scales the setting
// by their mean length. The occupancy rows print the mean call time
// request_log measured, which checks it.
func callMean(mean time.Duration) (time.Duration, error) {
	p := sim.New(map[string]sim.Model{"m": {Capability: 1}})
	const n = 2000
	out := 0
	for i := range n {
		resp, err := p.Complete(context.Background(), llm.Request{Model: "m", Prompt: benchPrompt(i), Seed: uint64(i + 1)})
		if err != nil {
			return 0, fmt.Errorf("calibrating the sim latency: %w", err)
		}
		out += resp.OutputTokens
	}
	// mean = setting × (0.5 + 0.5 × tokens/150), the lognormal's mean being 1.
	f := 0.5 + 0.5*float64(out)/n/150
	return time.Duration(float64(mean) / f).Round(time.Millisecond), nil
}

// purge empties the broker between runs: a fresh nats-server on an empty
// store (the next binary creates the stream and consumer again).
func (b *bench) purge(context.Context) error { return b.restartNATS() }

// jsonl writes n simple JSONL prompts (ids 0..n-1).
func (b *bench) jsonl(n int) (string, error) {
	name := filepath.Join(b.tmp, fmt.Sprint("prompts-", n, ".jsonl"))
	f, err := os.Create(name)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, `{"id":"%d","prompt":"What is %d plus %d? Answer briefly."}`+"\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return name, f.Close()
}

// routes writes a routes file whose every tier is one sim model with the
// given latency and no faults.
func (b *bench) routes(name string, latency time.Duration) (string, error) {
	file := filepath.Join(b.tmp, name+".yaml")
	y := fmt.Sprintf(`tiers:
  simple:   [sim/%[1]s]
  moderate: [sim/%[1]s]
  complex:  [sim/%[1]s]
models:
  sim/%[1]s:
    latency: %[2]s
    timeout: 30s
    error_rate: 0
    rate_limit_rate: 0
    timeout_rate: 0
    weak_rate: 0
    capability: 1
    input_cost_per_mtok: 0.15
    output_cost_per_mtok: 0.6
`, name, latency)
	return file, os.WriteFile(file, []byte(y), 0o644)
}

// occupancy of a batch: cascade is Σ cascade time / (slots × wall), wall
// running from the first cascade's start to the last one's end; calls
// counts only the time of model calls (request_log latencies) over the same
// wall, without a cascade's waits for its model's limiter. ideal is the
// cascade occupancy of a worker without any overhead on the same cascades:
// each taken, in queue order, by the first slot to free, at the instant it
// frees (idealOccupancy). It is below 1 because a batch ends: as the
// queue runs dry, slots go idle while the last, slowest calls finish.
type occupancy struct{ cascade, calls, meanCall, ideal float64 } // meanCall in seconds

func (b *bench) occupancy(ctx context.Context, batch string, slots int) (occupancy, error) {
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return occupancy{}, err
	}
	defer conn.Close(ctx)
	var busy, wall, calls, mean float64
	err = conn.QueryRow(ctx, `SELECT sum(latency_ms) / 1000,
		extract(epoch FROM max(completed_at) - min(completed_at - latency_ms * interval '1 millisecond')),
		(SELECT coalesce(sum(latency_ms), 0) / 1000 FROM request_log WHERE batch_id = $1),
		(SELECT coalesce(avg(latency_ms), 0) / 1000 FROM request_log WHERE batch_id = $1)
		FROM results WHERE batch_id = $1`, batch).Scan(&busy, &wall, &calls, &mean)
	if err != nil {
		return occupancy{}, err
	}
	rows, err := conn.Query(ctx, `SELECT latency_ms FROM results WHERE batch_id = $1 ORDER BY prompt_id::bigint`, batch)
	if err != nil {
		return occupancy{}, err
	}
	lat, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return occupancy{}, err
	}
	d := float64(slots) * wall
	return occupancy{cascade: busy / d, calls: calls / d, meanCall: mean, ideal: idealOccupancy(lat, slots)}, nil
}

// idealOccupancy is Σ d / (slots × makespan) for the durations d, in
// order, each started by the first of slots to free, the instant it frees
// (list scheduling): the occupancy of a worker without overhead.
func idealOccupancy(d []float64, slots int) float64 {
	if len(d) == 0 || slots <= 0 {
		return 0
	}
	h := make(minHeap, slots) // when each slot frees; all at 0
	sum, end := 0.0, 0.0
	for _, x := range d {
		t := h[0] + x
		h.replaceMin(t)
		sum, end = sum+x, max(end, t)
	}
	return sum / (float64(slots) * end)
}

// minHeap is a binary min-heap of times.
type minHeap []float64

// replaceMin replaces the smallest time with t.
func (h minHeap) replaceMin(t float64) {
	h[0] = t
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1] < h[c] {
			c++
		}
		if h[i] <= h[c] {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// rateLimited: three workers share an OpenAI-compatible server whose cheap
// model allows 100 requests/s across all clients (429 with retry-after-ms
// beyond it); the fallback is unlimited and priced 30× higher.
func (b *bench) rateLimited(ctx context.Context) error {
	api := openaitest.NewLimited(100, 20*time.Millisecond)
	defer api.Close()
	file := filepath.Join(b.tmp, "limited.yaml")
	y := `tiers:
  simple:   [openai/cheap, openai/pricey]
  moderate: [openai/cheap, openai/pricey]
  complex:  [openai/cheap, openai/pricey]
models:
  openai/cheap:  {input_cost_per_mtok: 0.15, output_cost_per_mtok: 0.6, timeout: 10s}
  openai/pricey: {input_cost_per_mtok: 4.5, output_cost_per_mtok: 18, timeout: 10s}
`
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		return err
	}
	const n = 2000
	if err := b.enqueue("limited", n, ""); err != nil {
		return err
	}
	env := []string{"ROUTES_FILE=" + file, "WORKER_CONCURRENCY=100", "WORKER_EXIT_WHEN_IDLE=true",
		"OPENAI_BASE_URL=" + api.URL, "OPENAI_API_KEY=sk-bench"}
	ch := make(chan error, 3)
	start := time.Now()
	for i := range 3 {
		go func() {
			_, err := b.cmd(append(env, fmt.Sprint("WORKER_ID=limited-", i)), b.bin+"/worker")
			ch <- err
		}()
	}
	for range 3 {
		if err := <-ch; err != nil {
			return err
		}
	}
	wall := time.Since(start)
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var cheap int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM results WHERE batch_id = 'limited' AND model_used = 'openai/cheap'`).Scan(&cheap); err != nil {
		return err
	}
	c := api.Counts()
	b.add("rate-limited run: 3 workers × 100 in flight, cheap model 100 req/s shared (429 beyond), fallback 30× (2,000 prompts, on_rate_limit: wait)",
		fmt.Sprintf("%.1f%% answered by the cheap model; %.1f%% of its capacity used; %.1f%% of its calls were 429s; %v",
			100*float64(cheap)/n, 100*c.CapacityUsed, 100*float64(c.Limited)/float64(max(c.Cheap, 1)), wall.Round(100*time.Millisecond)))
	return b.purge(ctx)
}

// profile runs BenchmarkWorkerPipeline (real JetStream and Postgres, a
// model that answers at once) under the CPU profiler and returns pprof's
// top entries by cumulative time within the worker's goroutines.
func (b *bench) profile() (string, error) {
	prof := filepath.Join(b.tmp, "cpu.out")
	bin := filepath.Join(b.tmp, "worker.test")
	c := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkWorkerPipeline", "-benchtime", "100000x",
		"-cpuprofile", prof, "-o", bin, "./internal/worker")
	c.Env = append(os.Environ(), "TEST_DATABASE_URL="+b.base)
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("profiling: %v\n%s", err, tail(string(out)))
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount", "30", bin, prof).Output()
	if err != nil {
		return "", fmt.Errorf("pprof: %w", err)
	}
	return string(top), nil
}

// simAnswerCPU is the simulator's own time per answer at latency 0 (text,
// usage, plan), measured in this process on the bench prompts: the part of
// the worker's CPU that a real provider would not cost.
func simAnswerCPU() float64 {
	p := sim.New(map[string]sim.Model{"instant": {Capability: 1}})
	ctx := context.Background()
	const n = 50_000
	reqs := make([]llm.Request, n)
	for i := range reqs {
		reqs[i] = llm.Request{Model: "instant", Prompt: fmt.Sprintf("What is %d plus %d? Answer briefly.", i, i), Seed: uint64(i)}
	}
	start := cpuTime()
	for _, r := range reqs {
		_, _ = p.Complete(ctx, r)
	}
	return (cpuTime() - start).Seconds() * 1e6 / n
}

// cpuTime is this process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// classifyRate is heuristic classifications per second on one goroutine.
func classifyRate() float64 {
	c := classify.Default()
	prompts := []string{
		"What is the capital of France?",
		"Explain how gradient descent works with momentum",
		"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
		"Write a haiku about the sea.",
	}
	n := 0
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		for range 1000 {
			c.Classify(prompts[n%len(prompts)])
			n++
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// startNATS starts bin/nats-server with JetStream on a free port.
func (b *bench) startNATS() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	store := filepath.Join(b.tmp, "js")
	c := exec.Command(b.bin+"/nats-server", "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", store)
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("bin/nats-server (make nats-server): %w", err)
	}
	b.natsPID = c.Process.Pid
	b.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", port)); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nats-server did not start")
		}
	}
	b.stopNATS = func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		_ = c.Wait()
		os.RemoveAll(store)
	}
	return func() { b.stopNATS() }, nil
}

func (b *bench) restartNATS() error {
	b.stopNATS()
	_, err := b.startNATS()
	return err
}

// makeSchema creates a scratch schema and points b.dsn at it.
func (b *bench) makeSchema(ctx context.Context) (func(), error) {
	if b.base == "" {
		return nil, fmt.Errorf("TEST_DATABASE_URL is not set")
	}
	conn, err := pgx.Connect(ctx, b.base)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	// The pid and the time: engineers' sandboxes share the Postgres but
	// not their pid numbers, and a run dropping another's schema of the
	// same name killed an enqueue run midway.
	b.schema = fmt.Sprintf("bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+b.schema); err != nil {
		return nil, err
	}
	u, err := url.Parse(b.base)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", b.schema)
	u.RawQuery = q.Encode()
	b.dsn = u.String()
	var ver string
	_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&ver)
	b.notes = append(b.notes, "Postgres "+ver)
	return func() {
		conn, err := pgx.Connect(context.Background(), b.base)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+b.schema+" CASCADE")
			conn.Close(context.Background())
		}
	}, nil
}

// write prints nothing more; it rewrites the bench section of out.
func (b *bench) write(out string) error {
	var s strings.Builder
	s.WriteString("<!-- begin:bench -->\n")
	fmt.Fprintf(&s, "Written by `make bench` (bench/benchrun) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&s, "Machine: %s; %d CPUs (%s); %s; %s; %s; nats-server from the pinned Go module. "+
		"Everything ran in one run against the same nats-server and Postgres, on a machine shared with other work (load average %s).\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOARCH, memTotal(), runtime.Version(), strings.Join(b.notes, ", "), loadAvg())
	s.WriteString("| what | result |\n| --- | --- |\n")
	for _, r := range b.rows {
		fmt.Fprintf(&s, "| %s | %s |\n", r[0], r[1])
	}
	if b.profileTop != "" {
		s.WriteString("\nCPU profile of `BenchmarkWorkerPipeline` (100,000 prompts through the whole worker on real JetStream and Postgres, a model that answers at once; `go tool pprof -top -cum`; the benchmark's own publishing is included):\n\n```\n")
		s.WriteString(strings.TrimSpace(b.profileTop))
		s.WriteString("\n```\n")
	}
	s.WriteString("<!-- end:bench -->\n")
	old, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	// The markers count only on a line of their own: the file's prose names them too.
	if i, j := strings.Index(text, "\n<!-- begin:bench -->\n"), strings.Index(text, "\n<!-- end:bench -->\n"); i >= 0 && j > i {
		text = text[:i+1] + s.String() + text[j+1+len("<!-- end:bench -->\n"):]
	} else {
		if text == "" {
			text = "# Benchmarks\n\n"
		}
		text += s.String()
	}
	return os.WriteFile(out, []byte(text), 0o644)
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return fmt.Sprintf("%.1f GB RAM", kb/1e6)
		}
	}
	return "unknown RAM"
}

func loadAvg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
