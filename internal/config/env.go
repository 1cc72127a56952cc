// Package config decodes and validates promptcascade's settings into plain
// structs: process settings from the environment (go-envconfig) and routing
// settings from the routes file (YAML). It builds nothing: cmd/* turns the
// settings into connections, providers, a cascade and a worker. Every error
// names the environment variable, or the routes file's line and key, that
// is wrong. A setting left unset is zero here and takes the default of the
// package that uses it (queue, worker, cascade), so each default is written
// once.
package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// NATS holds the broker settings shared by every binary; unset (zero)
// values take the queue package's defaults.
type NATS struct {
	URL           string        `env:"NATS_URL"`
	Stream        string        `env:"NATS_STREAM"`
	SubjectPrefix string        `env:"NATS_SUBJECT_PREFIX"`
	Consumer      string        `env:"NATS_CONSUMER"`
	AckWait       time.Duration `env:"NATS_ACK_WAIT"`
	MaxDeliver    int           `env:"NATS_MAX_DELIVER"`
	MaxAckPending int           `env:"NATS_MAX_ACK_PENDING"`
	DupeWindow    time.Duration `env:"NATS_DUPLICATE_WINDOW"`
	MaxBytes      int64         `env:"NATS_STREAM_MAX_BYTES,default=0"`
	MaxMsgs       int64         `env:"NATS_STREAM_MAX_MSGS,default=0"`
	Replicas      int           `env:"NATS_STREAM_REPLICAS"`
	// PlacementTags is a comma-separated list; see PlacementTagList.
	PlacementTags string `env:"NATS_STREAM_PLACEMENT_TAGS"`
	User          string `env:"NATS_USER"`
	Password      string `env:"NATS_PASSWORD"`
	Token         string `env:"NATS_TOKEN"`
	CredsFile     string `env:"NATS_CREDS"`
	NKeySeedFile  string `env:"NATS_NKEY_SEED"`
	TLSCA         string `env:"NATS_TLS_CA"`
	TLSCert       string `env:"NATS_TLS_CERT"`
	TLSKey        string `env:"NATS_TLS_KEY"`
	// MaxPromptBytes is the prompt-size rule's limit for every binary: the
	// largest job message, encoded (queue.MessageSize). 0: the server's
	// max_payload; more than max_payload is refused at connect.
	MaxPromptBytes int `env:"MAX_PROMPT_BYTES,default=0"`
}

// PlacementTagList splits NATS_STREAM_PLACEMENT_TAGS ("az:a,ssd") into
// its tags; nil when unset.
func (n NATS) PlacementTagList() []string {
	if n.PlacementTags == "" {
		return nil
	}
	tags := strings.Split(n.PlacementTags, ",")
	for i := range tags {
		tags[i] = strings.TrimSpace(tags[i])
	}
	return tags
}

// Postgres holds the database settings shared by every binary.
type Postgres struct {
	// DatabaseURL is a libpq URL or key=value string. Empty means "use the
	// PG* variables" (PGHOST, PGUSER, ...), which pgx reads itself.
	DatabaseURL string `env:"DATABASE_URL"`
	// StorePrompts=false keeps prompt and response text out of Postgres.
	StorePrompts bool `env:"STORE_PROMPTS,default=true"`
}

// Common holds what every binary needs.
type Common struct {
	NATS     NATS
	Postgres Postgres
	LogLevel string `env:"LOG_LEVEL,default=info"`
	// LogFormat is "text" or "json".
	LogFormat string `env:"LOG_FORMAT,default=text"`
}

// Worker is the configuration of cmd/worker. Unset (zero) tunables take
// the worker package's defaults.
type Worker struct {
	Common
	RoutesFile  string `env:"ROUTES_FILE"`
	PricingFile string `env:"PRICING_FILE"`
	Concurrency int    `env:"WORKER_CONCURRENCY"`
	WorkerID    string `env:"WORKER_ID"`
	MetricsAddr string `env:"METRICS_ADDR"`
	// MetricsBatchLabels is how many batches get their own batch label on
	// the prompt metrics; later ones share batch="_other"; 0 turns it off.
	MetricsBatchLabels int           `env:"METRICS_BATCH_LABELS,default=20"`
	ExitWhenIdle       bool          `env:"WORKER_EXIT_WHEN_IDLE,default=false"`
	CommitBatch        int           `env:"WORKER_COMMIT_BATCH"`
	CommitInterval     time.Duration `env:"WORKER_COMMIT_INTERVAL"`
	DrainTimeout       time.Duration `env:"WORKER_DRAIN_TIMEOUT"`
	// Fault names a fault-injection point for crash tests (one of the
	// Fault* constants); empty (off) by default.
	Fault string `env:"WORKER_FAULT"`
	// FaultAfter is how many prompts are committed before the fault fires.
	FaultAfter int    `env:"WORKER_FAULT_AFTER,default=50"`
	Seed       uint64 `env:"SIM_SEED,default=1"`
	// GCHeapFloorMB is the heap the collector lets grow before it runs
	// (package gctune); 0: GOGC 200 throughout.
	GCHeapFloorMB int `env:"GC_HEAP_FLOOR_MB,default=128"`
	Keys          ProviderKeys
}

// Fault-injection points (WORKER_FAULT) used by the crash tests: cmd/worker
// exits at once with status 137, as kill -9 would, at that point once
// WORKER_FAULT_AFTER prompts have been committed.
const (
	FaultDuringCall   = "during-call"   // while a model call is running
	FaultBeforeCommit = "before-commit" // answer in hand, nothing committed
	FaultAfterCommit  = "after-commit"  // committed, not yet acked
	// Provider batch points: the provider accepted a batch whose id is not
	// stored yet; a chunk of an ingest committed, the rest not.
	FaultBatchAfterCreate = "batch-after-create"
	FaultBatchMidIngest   = "batch-mid-ingest"
)

// ProviderKeys holds provider credentials and base-URL overrides.
type ProviderKeys struct {
	OpenAIKey        string `env:"OPENAI_API_KEY"`
	OpenAIBaseURL    string `env:"OPENAI_BASE_URL"`
	AnthropicKey     string `env:"ANTHROPIC_API_KEY"`
	AnthropicBaseURL string `env:"ANTHROPIC_BASE_URL"`
	AnthropicVersion string `env:"ANTHROPIC_VERSION"`
	GeminiKey        string `env:"GEMINI_API_KEY"`
	GeminiBaseURL    string `env:"GEMINI_BASE_URL"`
	GroqKey          string `env:"GROQ_API_KEY"`
	GroqBaseURL      string `env:"GROQ_BASE_URL"`
}

// Enqueue is the configuration of cmd/enqueue.
type Enqueue struct {
	Common
	MaxPending int `env:"ENQUEUE_MAX_PENDING,default=4096"`
	// GCHeapFloorMB is the heap the collector lets grow before it runs
	// (package gctune); 0: Go's default collector.
	GCHeapFloorMB int `env:"GC_HEAP_FLOOR_MB,default=128"`
	// Routes and prices price a batch for --budget auto.
	RoutesFile  string `env:"ROUTES_FILE"`
	PricingFile string `env:"PRICING_FILE"`
}

// Ctl is the configuration of cmd/cascadectl.
type Ctl struct {
	Common
	RoutesFile  string       `env:"ROUTES_FILE"`
	PricingFile string       `env:"PRICING_FILE"`
	Keys        ProviderKeys // for `batches cancel`, which calls the provider
}

// LoadWorker reads the worker configuration from the environment.
func LoadWorker(ctx context.Context, l envconfig.Lookuper) (*Worker, error) {
	var c Worker
	if err := process(ctx, l, &c); err != nil {
		return nil, err
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return &c, c.validate(set(l))
}

// LoadEnqueue reads the enqueue configuration from the environment.
func LoadEnqueue(ctx context.Context, l envconfig.Lookuper) (*Enqueue, error) {
	var c Enqueue
	if err := process(ctx, l, &c); err != nil {
		return nil, err
	}
	quietCLI(l, &c.Common)
	is := set(l)
	return &c, errors.Join(c.Common.validate(is),
		is.positive("ENQUEUE_MAX_PENDING", c.MaxPending),
		nonNegative("GC_HEAP_FLOOR_MB", c.GCHeapFloorMB, "0 turns the floor off"))
}

// LoadCtl reads the cascadectl configuration from the environment.
func LoadCtl(ctx context.Context, l envconfig.Lookuper) (*Ctl, error) {
	var c Ctl
	if err := process(ctx, l, &c); err != nil {
		return nil, err
	}
	quietCLI(l, &c.Common)
	return &c, c.Common.validate(set(l))
}

// quietCLI makes command-line tools log warnings and errors only, unless
// LOG_LEVEL asks for more: their output is for the user, not for a log store.
func quietCLI(l envconfig.Lookuper, c *Common) {
	if l == nil {
		l = envconfig.OsLookuper()
	}
	if _, set := l.Lookup("LOG_LEVEL"); !set {
		c.LogLevel = "warn"
	}
}

func (c *Worker) validate(is isSet) error {
	return errors.Join(
		c.Common.validate(is),
		is.positive("WORKER_CONCURRENCY", c.Concurrency),
		is.positive("WORKER_COMMIT_BATCH", c.CommitBatch),
		is.positiveDur("WORKER_COMMIT_INTERVAL", c.CommitInterval),
		is.positiveDur("WORKER_DRAIN_TIMEOUT", c.DrainTimeout),
		nonNegative("METRICS_BATCH_LABELS", c.MetricsBatchLabels, ""),
		nonNegative("GC_HEAP_FLOOR_MB", c.GCHeapFloorMB, "0 turns the floor off"),
		oneOf("WORKER_FAULT", c.Fault, "", FaultDuringCall, FaultBeforeCommit, FaultAfterCommit, FaultBatchAfterCreate, FaultBatchMidIngest),
	)
}

func (c *Common) validate(is isSet) error {
	n := c.NATS
	return errors.Join(
		is.nonEmpty("NATS_URL", n.URL),
		is.nonEmpty("NATS_STREAM", n.Stream),
		is.nonEmpty("NATS_SUBJECT_PREFIX", n.SubjectPrefix),
		is.nonEmpty("NATS_CONSUMER", n.Consumer),
		is.positiveDur("NATS_ACK_WAIT", n.AckWait),
		is.positive("NATS_MAX_DELIVER", n.MaxDeliver),
		is.positive("NATS_MAX_ACK_PENDING", n.MaxAckPending),
		nonNegativeDur("NATS_DUPLICATE_WINDOW", n.DupeWindow),
		is.replicas("NATS_STREAM_REPLICAS", n.Replicas),
		tags("NATS_STREAM_PLACEMENT_TAGS", n.PlacementTags),
		nonNegative("MAX_PROMPT_BYTES", n.MaxPromptBytes, "0 means the server's max_payload"),
		oneOf("LOG_LEVEL", strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"),
		oneOf("LOG_FORMAT", c.LogFormat, "text", "json"),
		pair("NATS_TLS_CERT", n.TLSCert, "NATS_TLS_KEY", n.TLSKey),
	)
}

// process runs go-envconfig and rewrites its errors to name the variable
// rather than the Go field.
func process(ctx context.Context, l envconfig.Lookuper, target any) error {
	if l == nil {
		l = envconfig.OsLookuper()
	}
	err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: l})
	if err == nil {
		return nil
	}
	// go-envconfig names the Go field path ("Common: NATS: AckWait: ...");
	// follow it to the field's variable.
	parts := strings.Split(err.Error(), ": ")
	t := reflect.TypeOf(target).Elem()
	for i, name := range parts {
		f, ok := t.FieldByName(name)
		if !ok {
			break
		}
		if tag := f.Tag.Get("env"); tag != "" {
			key, _, _ := strings.Cut(tag, ",")
			return fmt.Errorf("%s: invalid value: %s", key, strings.Join(parts[i+1:], ": "))
		}
		if f.Type.Kind() != reflect.Struct {
			break
		}
		t = f.Type
	}
	return fmt.Errorf("environment: %w", err)
}

// isSet reports whether a variable is set; validation lets an unset
// variable stay zero (the using package's default), and refuses a set one
// that is out of range.
type isSet func(key string) bool

func set(l envconfig.Lookuper) isSet {
	if l == nil {
		l = envconfig.OsLookuper()
	}
	return func(key string) bool {
		_, ok := l.Lookup(key)
		return ok
	}
}

func (is isSet) positive(key string, v int) error {
	if v < 0 || (v == 0 && is(key)) {
		return fmt.Errorf("%s: must be a positive integer, got %d", key, v)
	}
	return nil
}

// replicas accepts what JetStream does: 1 to 5 copies (3 or 5 survive the
// loss of one or two servers; 2 and 4 survive no more than 1 and 3).
func (is isSet) replicas(key string, v int) error {
	if v < 0 || v > 5 || (v == 0 && is(key)) {
		return fmt.Errorf("%s: must be 1 to 5 (JetStream's range; 3 is usual on a cluster), got %d", key, v)
	}
	return nil
}

func tags(key string, list string) error {
	if list == "" {
		return nil
	}
	for i, v := range strings.Split(list, ",") {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s: tag %d is empty (write tags separated by commas, e.g. \"az:a,ssd\")", key, i+1)
		}
	}
	return nil
}

func (is isSet) positiveDur(key string, v time.Duration) error {
	if v < 0 || (v == 0 && is(key)) {
		return fmt.Errorf("%s: must be a positive duration, got %s", key, v)
	}
	return nil
}

func nonNegativeDur(key string, v time.Duration) error {
	if v < 0 {
		return fmt.Errorf("%s: must not be negative, got %s", key, v)
	}
	return nil
}

func (is isSet) nonEmpty(key, v string) error {
	if strings.TrimSpace(v) == "" && is(key) {
		return fmt.Errorf("%s: must not be empty", key)
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	var shown []string
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", key, v, strings.Join(shown, ", "))
}

func pair(k1, v1, k2, v2 string) error {
	if (v1 == "") != (v2 == "") {
		return fmt.Errorf("%s and %s: set both or neither", k1, k2)
	}
	return nil
}

// nonNegative refuses v < 0; note, when given, says what 0 means.
func nonNegative(key string, v int, note string) error {
	if v < 0 {
		if note != "" {
			return fmt.Errorf("%s: must not be negative, got %d (%s)", key, v, note)
		}
		return fmt.Errorf("%s: must not be negative, got %d", key, v)
	}
	return nil
}
