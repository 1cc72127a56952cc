// Package queue is promptcascade's JetStream layer: it connects to
// nats-server (checking its version and that JetStream is on), ensures the
// PROMPTS stream and the shared durable pull consumer, publishes jobs with
// deduplication and back-pressure, and hands the worker deliveries to ack,
// nak, term or extend.
//
// Delivery is at least once; the Nats-Msg-Id header (batch/id) makes a
// re-published job a no-op within the stream's duplicate window, and the
// worker's idempotent store makes a redelivered one a no-op after that.
package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promptcascade/promptcascade/internal/backoff"
	"github.com/promptcascade/promptcascade/internal/redact"
)

// Defaults applied by Config.WithDefaults.
const (
	DefaultURL               = nats.DefaultURL // nats://127.0.0.1:4222
	DefaultStream            = "PROMPTS"
	DefaultSubjectPrefix     = "prompts"
	DefaultConsumer          = "workers"
	DefaultAckWait           = 30 * time.Second
	DefaultMaxDeliver        = 10
	DefaultMaxAckPending     = 20000
	DefaultDuplicateWindow   = 2 * time.Minute
	DefaultConnectTimeout    = 10 * time.Second
	DefaultReconnectWait     = time.Second
	DefaultPublishAckTimeout = 10 * time.Second
)

// Config says where the broker is, how to authenticate, and how the stream
// and consumer are shaped. The zero value plus WithDefaults is a working
// local setup.
type Config struct {
	// URL of the server, or several separated by commas. It may carry
	// credentials (nats://user:password@host:4222, nats://token@host:4222);
	// those are never logged. tls:// requires TLS.
	URL string
	// Name identifies this connection on the server (e.g. "worker-3").
	Name string

	Stream        string // stream name; default PROMPTS
	SubjectPrefix string // jobs go to <prefix>.<batch>; default "prompts"
	Consumer      string // durable pull consumer; default "workers"

	AckWait       time.Duration // redelivery after this long without ack or InProgress; default 30s
	MaxDeliver    int           // deliveries before the server stops redelivering; default 10
	MaxAckPending int           // unacknowledged messages across all workers; default 20000

	// Stream limits. On a new stream 0 means the default (DuplicateWindow 2m,
	// MaxBytes and MaxMsgs unlimited). On an existing stream 0 leaves what
	// the operator configured; any other value is applied (-1 = unlimited).
	// The stream discards new messages when full, so a limit makes
	// publishers wait instead of losing work.
	DuplicateWindow time.Duration
	MaxBytes        int64
	MaxMsgs         int64

	// Replicas is the number of copies a new stream keeps on a JetStream
	// cluster (1, 3 or 5; default 1). An existing stream with fewer is
	// reported by EnsureStream and never changed. PlacementTags, when set,
	// place a new stream on servers carrying all of those tags.
	Replicas      int
	PlacementTags []string

	ConnectTimeout    time.Duration // how long Connect keeps trying an unreachable server; default 10s
	ReconnectWait     time.Duration // pause between reconnect attempts once connected; default 1s
	PublishAckTimeout time.Duration // a publish without ack after this long is sent again; default 10s

	// MaxMessageBytes is the prompt-size rule's limit (MAX_PROMPT_BYTES):
	// the largest job message, as the server counts it against max_payload
	// (see MessageSize). 0 means the server's max_payload; Connect refuses
	// a value above it (*LimitError).
	MaxMessageBytes int

	// Authentication. Credentials in URL take precedence over User/Password
	// and Token (nats.go behaviour).
	User, Password string
	Token          string
	CredsFile      string // .creds file (user JWT + nkey seed), operator mode
	NKeySeedFile   string // file holding a user nkey seed ("SU...")

	// TLS. A tls:// URL, TLSCA or a client certificate turns TLS on.
	TLSCA   string // PEM file of the CA that signed the server certificate
	TLSCert string // client certificate PEM (with TLSKey)
	TLSKey  string
}

// redacted returns a copy safe to print: password, token and URL
// credentials hidden.
func (c Config) redacted() Config {
	c.URL = redact.URL(c.URL)
	if c.Password != "" {
		c.Password = redact.Mark
	}
	if c.Token != "" {
		c.Token = redact.Mark
	}
	return c
}

// String prints the configuration with secrets hidden, so that %v and %+v
// are safe in logs and errors.
func (c Config) String() string {
	type plain Config // no String method: no recursion
	return fmt.Sprintf("%+v", plain(c.redacted()))
}

// LogValue makes slog print the configuration with secrets hidden.
func (c Config) LogValue() slog.Value {
	r := c.redacted()
	return slog.GroupValue(
		slog.String("url", r.URL), slog.String("name", r.Name),
		slog.String("stream", r.Stream), slog.String("subject_prefix", r.SubjectPrefix),
		slog.String("consumer", r.Consumer), slog.Duration("ack_wait", r.AckWait),
		slog.Int("max_deliver", r.MaxDeliver), slog.Int("max_ack_pending", r.MaxAckPending),
		slog.Duration("duplicate_window", r.DuplicateWindow),
		slog.Int64("max_bytes", r.MaxBytes), slog.Int64("max_msgs", r.MaxMsgs),
		slog.String("user", r.User), slog.Bool("password_set", c.Password != ""),
		slog.Bool("token_set", c.Token != ""), slog.String("creds_file", r.CredsFile),
		slog.String("nkey_seed_file", r.NKeySeedFile), slog.String("tls_ca", r.TLSCA),
		slog.String("tls_cert", r.TLSCert), slog.String("tls_key", r.TLSKey),
	)
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Name == "" {
		c.Name = "promptcascade"
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.PublishAckTimeout == 0 {
		c.PublishAckTimeout = DefaultPublishAckTimeout
	}
	return c
}

// Validate reports the first setting that is wrong, naming the field.
func (c Config) Validate() error {
	if _, err := serverURLs(c.URL); err != nil {
		return err
	}
	if err := validName("Stream", c.Stream); err != nil {
		return err
	}
	if err := validName("Consumer", c.Consumer); err != nil {
		return err
	}
	if err := validPrefix(c.SubjectPrefix); err != nil {
		return err
	}
	switch {
	case c.AckWait < time.Second:
		return fmt.Errorf("queue: AckWait: %s is too short, use at least 1s", c.AckWait)
	case c.MaxDeliver < -1 || c.MaxDeliver == 0:
		return fmt.Errorf("queue: MaxDeliver: %d: must be >= 1 (or -1 for unlimited)", c.MaxDeliver)
	case c.MaxAckPending < 1:
		return fmt.Errorf("queue: MaxAckPending: %d: must be >= 1", c.MaxAckPending)
	case c.DuplicateWindow < 0:
		return fmt.Errorf("queue: DuplicateWindow: %s: must not be negative", c.DuplicateWindow)
	case c.MaxBytes < -1:
		return fmt.Errorf("queue: MaxBytes: %d: must be >= 1, or -1 for unlimited, or 0 for the default", c.MaxBytes)
	case c.MaxMsgs < -1:
		return fmt.Errorf("queue: MaxMsgs: %d: must be >= 1, or -1 for unlimited, or 0 for the default", c.MaxMsgs)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("queue: ConnectTimeout: %s: must not be negative", c.ConnectTimeout)
	case c.ReconnectWait < 0:
		return fmt.Errorf("queue: ReconnectWait: %s: must not be negative", c.ReconnectWait)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("queue: MaxMessageBytes: %d: must not be negative (0 means the server's max_payload)", c.MaxMessageBytes)
	case c.PublishAckTimeout < 0:
		return fmt.Errorf("queue: PublishAckTimeout: %s: must not be negative", c.PublishAckTimeout)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("queue: TLSCert and TLSKey: set both or neither")
	case c.Token != "" && c.User != "":
		return errors.New("queue: Token and User: set one or the other")
	case c.CredsFile != "" && c.NKeySeedFile != "":
		return errors.New("queue: CredsFile and NKeySeedFile: set one or the other")
	}
	return nil
}

// validName checks a stream or consumer name: no whitespace, dots,
// wildcards or path separators.
func validName(field, name string) error {
	if name == "" {
		return fmt.Errorf("queue: %s: must not be empty", field)
	}
	for i, r := range name {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) {
			return fmt.Errorf("queue: %s %q: character %q at position %d is not allowed", field, name, r, i+1)
		}
	}
	return nil
}

func validPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("queue: SubjectPrefix: must not be empty")
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" {
			return fmt.Errorf("queue: SubjectPrefix %q: empty token (leading, trailing or double dot)", prefix)
		}
		for i, r := range tok {
			if r <= ' ' || r == 0x7f || r == '*' || r == '>' {
				return fmt.Errorf("queue: SubjectPrefix %q: character %q in token %q at position %d is not allowed", prefix, r, tok, i+1)
			}
		}
	}
	return nil
}

// serverURLs splits and checks a comma-separated URL list. Errors show the
// URL redacted and never the parser's message (which would quote it).
func serverURLs(list string) ([]string, error) {
	var out []string
	for raw := range strings.SplitSeq(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u := raw
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		p, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("queue: URL %s is not a valid URL", redact.URL(raw))
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("queue: URL %s: scheme %q is not supported (use nats://, tls://, ws:// or wss://)", redact.URL(raw), p.Scheme)
		}
		if p.Hostname() == "" {
			return nil, fmt.Errorf("queue: URL %s: no host", redact.URL(raw))
		}
		out = append(out, raw)
	}
	if len(out) == 0 {
		return nil, errors.New("queue: URL: must not be empty")
	}
	return out, nil
}

// Conn is a connection to nats-server with JetStream.
type Conn struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// ErrNoJetStream is wrapped by Connect's error when the server (or the
// account) does not have JetStream enabled.
var ErrNoJetStream = errors.New("JetStream is not enabled")

// Connect dials the server, retrying an unreachable one for
// cfg.ConnectTimeout (or until ctx ends), then reconnects forever. It
// refuses a server older than 2.10 (*ServerVersionError) or without
// JetStream (ErrNoJetStream). Authentication and TLS failures are returned
// at once. Errors and logs never contain passwords or tokens.
func Connect(ctx context.Context, cfg Config, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	urls, _ := serverURLs(cfg.URL) // validated above
	log = log.With("component", "queue")
	where := redact.URL(strings.Join(urls, ","))

	opts, err := cfg.natsOptions(log)
	if err != nil {
		return nil, err
	}
	secrets := cfg.secrets()

	deadline := time.Now().Add(cfg.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dial := backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	var nc *nats.Conn
	for attempt := 1; ; attempt++ {
		nc, err = nats.Connect(strings.Join(urls, ","), opts...)
		if err == nil {
			break
		}
		err = secrets.Error(err)
		if !retryableConnectErr(err) {
			return nil, fmt.Errorf("queue: connect to %s: %w", where, err)
		}
		wait := dial.Delay(attempt)
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("queue: cannot reach nats-server at %s within %s: %w", where, cfg.ConnectTimeout, err)
		}
		log.Debug("nats-server not reachable yet, retrying", "url", where, "err", err)
		if backoff.Sleep(ctx, wait) != nil {
			return nil, fmt.Errorf("queue: connect to %s: %w", where, context.Cause(ctx))
		}
	}

	at := redact.URL(nc.ConnectedUrl())
	if err := checkServerVersion(nc.ConnectedServerVersion(), at); err != nil {
		nc.Close()
		return nil, err
	}
	if mp := nc.MaxPayload(); int64(cfg.MaxMessageBytes) > mp {
		nc.Close()
		return nil, &LimitError{Limit: cfg.MaxMessageBytes, MaxPayload: mp, Server: at}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("queue: JetStream context: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("queue: nats-server %s at %s: %w (start it with -js, or add jetstream {} to its config and enable it for this account)",
				nc.ConnectedServerVersion(), at, ErrNoJetStream)
		}
		return nil, fmt.Errorf("queue: JetStream account info from %s: %w", at, secrets.Error(err))
	}
	log.Info("connected to nats-server", "url", at, "version", nc.ConnectedServerVersion(), "name", cfg.Name)
	return &Conn{cfg: cfg, nc: nc, js: js, log: log}, nil
}

// secrets is the redactor of c's password, token and URL credentials.
func (c Config) secrets() redact.Redactor {
	s := []string{c.Password, c.Token}
	for raw := range strings.SplitSeq(c.URL, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				s = append(s, p)
			} else {
				s = append(s, u.User.Username()) // a token
			}
		}
	}
	return redact.New(s...)
}

func (c Config) natsOptions(log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.Timeout(min(c.ConnectTimeout, 5*time.Second)),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			attrs := []any{}
			if u := nc.ConnectedUrl(); u != "" {
				attrs = append(attrs, "url", redact.URL(u))
			}
			if err != nil {
				log.Warn("disconnected from nats-server", append(attrs, "err", c.secrets().Error(err))...)
				return
			}
			log.Info("disconnected from nats-server", attrs...)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to nats-server", "url", redact.URL(nc.ConnectedUrl()), "version", nc.ConnectedServerVersion())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Debug("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"err", c.secrets().Error(err)}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			log.Warn("nats asynchronous error", attrs...)
		}),
	}
	if c.User != "" || c.Password != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			// The error names the file, never the seed.
			return nil, fmt.Errorf("queue: NKeySeedFile %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// retryableConnectErr says whether Connect should try again: only when the
// server could not be reached (refused, reset, timed out). Authentication,
// TLS and anything else unknown will not fix itself and is returned at once.
func retryableConnectErr(err error) bool {
	if errors.Is(err, nats.ErrTLS) || errors.Is(err, nats.ErrAuthorization) {
		return false
	}
	if errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// JetStream returns the JetStream context of the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Config returns the configuration with defaults applied.
func (c *Conn) Config() Config { return c.cfg }

// MessageLimit is the prompt-size rule's limit on this connection:
// Config.MaxMessageBytes, or the server's max_payload when that is 0.
func (c *Conn) MessageLimit() int {
	if c.cfg.MaxMessageBytes > 0 {
		return c.cfg.MaxMessageBytes
	}
	return int(min(c.nc.MaxPayload(), int64(^uint(0)>>1)))
}

// Close closes the connection. Pending publishes are abandoned; use
// Publisher.Wait first.
func (c *Conn) Close() {
	c.nc.Close()
}

// Drain delivers what is buffered, then closes the connection.
func (c *Conn) Drain() error {
	if err := c.nc.Drain(); err != nil {
		return fmt.Errorf("queue: drain: %w", err)
	}
	return nil
}
