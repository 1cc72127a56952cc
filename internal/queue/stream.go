package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes used for classification.
const (
	errCodeInsufficientResources jetstream.ErrorCode = 10023 // account or server storage exhausted
	errCodeStreamSubjectOverlap  jetstream.ErrorCode = 10065
	errCodeStreamStoreFailed     jetstream.ErrorCode = 10077 // includes max msgs / max bytes reached with DiscardNew
)

// StreamConflictError is returned by EnsureStream when a stream of that
// name exists with a setting promptcascade cannot work with. EnsureStream
// never changes such a stream.
type StreamConflictError struct {
	Stream  string
	Setting string
	Have    string
	Want    string
}

func (e *StreamConflictError) Error() string {
	return fmt.Sprintf("queue: stream %s exists with %s %s but promptcascade needs %s; remove it (nats stream rm %s) or configure another stream name",
		e.Stream, e.Setting, e.Have, e.Want, e.Stream)
}

// StreamConfig is the configuration EnsureStream creates a new stream with.
func (c *Conn) StreamConfig() jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        c.cfg.Stream,
		Description: "promptcascade prompts (work queue)",
		Subjects:    []string{c.cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		Duplicates:  c.cfg.DuplicateWindow,
		MaxBytes:    c.cfg.MaxBytes,
		MaxMsgs:     c.cfg.MaxMsgs,
		Replicas:    c.cfg.Replicas,
	}
	if len(c.cfg.PlacementTags) > 0 {
		cfg.Placement = &jetstream.Placement{Tags: c.cfg.PlacementTags}
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = DefaultDuplicateWindow
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = -1
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = -1
	}
	return cfg
}

// EnsureStream creates the stream (file storage, work-queue retention,
// DiscardNew, subjects prefix.>) or checks an existing one. An existing
// stream with another retention, storage or subjects is refused with a
// *StreamConflictError; its discard policy is set to DiscardNew and the
// limits the Config sets explicitly are applied. An existing stream with
// fewer replicas than the Config asks for is logged as a warning naming the
// `nats stream edit` command that raises them; replicas and placement of an
// existing stream are never changed. Safe to call from many processes at
// once.
func (c *Conn) EnsureStream(ctx context.Context) (jetstream.Stream, error) {
	want := c.StreamConfig()
	s, err := c.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = c.js.CreateStream(ctx, want)
		switch {
		case err == nil:
			c.log.Info("created stream", "stream", want.Name, "subjects", want.Subjects)
			return s, nil
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			// Created meanwhile by another process with other settings.
			s, err = c.js.Stream(ctx, want.Name)
		default:
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamSubjectOverlap {
				return nil, fmt.Errorf("queue: create stream %s: subjects %v overlap with another stream's subjects; change the subject prefix or remove that stream: %w",
					want.Name, want.Subjects, err)
			}
			return nil, fmt.Errorf("queue: create stream %s: %w", want.Name, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("queue: look up stream %s: %w", want.Name, err)
	}

	have := s.CachedInfo().Config
	if have.Retention != jetstream.WorkQueuePolicy {
		return nil, &StreamConflictError{Stream: have.Name, Setting: "retention", Have: have.Retention.String(), Want: jetstream.WorkQueuePolicy.String()}
	}
	if have.Storage != jetstream.FileStorage {
		return nil, &StreamConflictError{Stream: have.Name, Setting: "storage", Have: have.Storage.String(), Want: jetstream.FileStorage.String()}
	}
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		return nil, &StreamConflictError{Stream: have.Name, Setting: "subjects", Have: fmt.Sprint(have.Subjects), Want: fmt.Sprint(want.Subjects)}
	}

	if have.Replicas < want.Replicas {
		c.log.Warn("stream has fewer replicas than NATS_STREAM_REPLICAS; it is left as it is: a server lost with it may lose queued prompts",
			"stream", have.Name, "replicas", have.Replicas, "want", want.Replicas,
			"fix", fmt.Sprintf("nats stream edit %s --replicas %d", have.Name, want.Replicas))
	}

	upd := have
	if upd.Discard != jetstream.DiscardNew {
		upd.Discard = jetstream.DiscardNew
	}
	if c.cfg.DuplicateWindow != 0 {
		upd.Duplicates = c.cfg.DuplicateWindow
	}
	if c.cfg.MaxBytes != 0 {
		upd.MaxBytes = c.cfg.MaxBytes
	}
	if c.cfg.MaxMsgs != 0 {
		upd.MaxMsgs = c.cfg.MaxMsgs
	}
	if upd.Discard == have.Discard && upd.Duplicates == have.Duplicates &&
		upd.MaxBytes == have.MaxBytes && upd.MaxMsgs == have.MaxMsgs {
		return s, nil
	}
	s, err = c.js.UpdateStream(ctx, upd)
	if err != nil {
		return nil, fmt.Errorf("queue: update stream %s: %w", want.Name, err)
	}
	c.log.Info("updated stream", "stream", want.Name, "discard", upd.Discard.String(),
		"duplicates", upd.Duplicates, "max_bytes", upd.MaxBytes, "max_msgs", upd.MaxMsgs)
	return s, nil
}

// ConsumerConfig is the configuration EnsureConsumer applies to the
// normal-priority consumer.
func (c *Conn) ConsumerConfig() jetstream.ConsumerConfig {
	return c.priorityConsumerConfig(PriorityNormal)
}

// priorityConsumerConfig is the configuration of priority p's consumer:
// the same settings, its own name and filter subject.
func (c *Conn) priorityConsumerConfig(p string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       priorityConsumer(c.cfg.Consumer, p),
		Description:   "promptcascade workers (shared pull consumer, " + p + " priority)",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    c.cfg.MaxDeliver,
		MaxAckPending: c.cfg.MaxAckPending,
		FilterSubject: priorityFilter(c.cfg.SubjectPrefix, p),
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// EnsureConsumer creates or updates the durable pull consumers shared by
// all workers (explicit ack, AckWait, MaxDeliver, MaxAckPending), one per
// priority, and returns the normal one (filter prefix.*); the high and low
// ones (name-high, name-low) filter prefix.high.* and prefix.low.*. The
// normal one is updated first: a consumer made before priorities existed
// filters prefix.>, which overlaps the others. The stream must exist.
func (c *Conn) EnsureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := c.ensurePriorityConsumer(ctx, PriorityNormal)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{PriorityHigh, PriorityLow} {
		if _, err := c.ensurePriorityConsumer(ctx, p); err != nil {
			return nil, err
		}
	}
	return cons, nil
}

func (c *Conn) ensurePriorityConsumer(ctx context.Context, p string) (jetstream.Consumer, error) {
	cfg := c.priorityConsumerConfig(p)
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("queue: consumer %s: stream %s does not exist (enqueue creates it): %w", cfg.Durable, c.cfg.Stream, err)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: create or update consumer %s on stream %s: %w", cfg.Durable, c.cfg.Stream, err)
	}
	return cons, nil
}

// Permanent reports whether err, from a request to JetStream, is one that
// waiting cannot fix: the stream exists with settings this code will not
// change (*StreamConflictError), the connection is closed for good, or the
// server refuses these credentials or permissions. Anything else (the
// server unreachable or restarting, JetStream unavailable or recovering, a
// request timing out) is transient: the broker is down, and comes back.
func Permanent(err error) bool {
	var conflict *StreamConflictError
	return errors.As(err, &conflict) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrAuthorization) ||
		errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) ||
		errors.Is(err, nats.ErrPermissionViolation)
}
