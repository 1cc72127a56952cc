// Package prompt is the shared vocabulary of promptcascade: the types that the
// queue, classifier, cascade, store and worker pass between each other. It holds
// data only: no logic beyond trivial helpers, and no imports of other project
// packages, so that nothing imports in a circle.
package prompt

import (
	"encoding/json"
	"time"
)

// Tier is a complexity tier chosen by the classifier.
type Tier string

// The three tiers of the reference heuristic.
const (
	TierSimple   Tier = "simple"
	TierModerate Tier = "moderate"
	TierComplex  Tier = "complex"
)

// Tiers lists every tier, cheapest first.
var Tiers = []Tier{TierSimple, TierModerate, TierComplex}

// Valid reports whether t is one of the known tiers.
func (t Tier) Valid() bool {
	return t == TierSimple || t == TierModerate || t == TierComplex
}

// Job is one prompt as it travels on the queue. Its JSON form is the message
// body that enqueue publishes and the worker decodes.
type Job struct {
	BatchID    string          `json:"batch"`
	ID         string          `json:"id"`
	Prompt     string          `json:"prompt"`
	System     string          `json:"system,omitempty"`
	MaxTokens  int             `json:"max_tokens,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
	// Seq is the prompt's 1-based position in the input of the enqueue run
	// that published it (across its files, in order); 0 when unknown.
	// Exports list a batch in this order.
	Seq int64 `json:"seq,omitempty"`
	// Resume is set on a job republished after a provider batch round: its
	// cascade continues at a later model instead of starting over.
	Resume *Resume `json:"resume,omitempty"`
	// Priority is the batch's priority (high, normal or low; "" is
	// normal): it chooses the subject the job is published to.
	Priority string `json:"priority,omitempty"`
}

// Resume says where a prompt's cascade continues after a provider batch
// round handed it back to the queue.
type Resume struct {
	Tier     Tier `json:"tier"`     // the tier chosen in the first round (not classified again)
	Position int  `json:"position"` // index of the next model in the tier's list
	Attempts int  `json:"attempts"` // attempts logged so far; numbering continues after them
}

// Handoff is set on a Result whose cascade reached a batch-mode model: the
// prompt is recorded for that model's next provider batch (with the
// attempts made so far) instead of being answered now.
type Handoff struct {
	Model    string // "provider/model"
	Position int    // its index in the tier's list
}

// Signals are what the classifier measured; results store them so that SQL
// can relate misrouting to them.
type Signals struct {
	WordCount    int `json:"word_count"`  // whitespace-separated words of the prompt
	TokenCount   int `json:"token_count"` // o200k_base tokens of system + prompt (what is sent)
	ComplexHits  int `json:"complex_hits"`
	ModerateHits int `json:"moderate_hits"`
	// Score is the learned router's score (0 = the cheap tier will do, 1 =
	// needs the strongest); Scored is false when the heuristic decided.
	Score  float64 `json:"score,omitempty"`
	Scored bool    `json:"-"`
}

// Outcome is what one attempt ended with; it is stored in request_log.outcome.
// It is the one vocabulary of attempts: a failed provider call's class
// (llm.Class) is an Outcome too, so nothing is converted by string.
type Outcome string

// Retryable reports whether the same model may be tried again for the same
// prompt after a pause: rate limited, overloaded, server error, timeout or
// network. Every other failure says something about the prompt or the model.
func (o Outcome) Retryable() bool {
	switch o {
	case OutcomeRateLimited, OutcomeOverloaded, OutcomeServerError, OutcomeTimeout, OutcomeNetwork:
		return true
	}
	return false
}

// Transient reports whether a failure says nothing about the prompt itself:
// a whole cascade that fails only with transient outcomes is handed back to
// the queue for a later delivery instead of being stored as failed.
func (o Outcome) Transient() bool { return o.Retryable() }

// Outcomes of an attempt; the failures among them are also the classes of
// provider errors (llm.Class).
const (
	OutcomeOK             Outcome = "ok"
	OutcomeQualityFailed  Outcome = "quality_failed"
	OutcomeRateLimited    Outcome = "rate_limited"
	OutcomeOverloaded     Outcome = "overloaded"
	OutcomeServerError    Outcome = "server_error"
	OutcomeTimeout        Outcome = "timeout"
	OutcomeNetwork        Outcome = "network"
	OutcomeAuthError      Outcome = "auth_error"
	OutcomePermission     Outcome = "permission"
	OutcomeNotFound       Outcome = "not_found"
	OutcomeBadRequest     Outcome = "bad_request"
	OutcomeContextWindow  Outcome = "context_window"
	OutcomeQuotaExhausted Outcome = "quota_exhausted"
	OutcomeContentFilter  Outcome = "content_filter"
	OutcomeEmptyResponse  Outcome = "empty_response"
	OutcomeCooldownSkip   Outcome = "cooldown_skip"
	OutcomeCanceled       Outcome = "canceled"
	// A request of a provider batch that the provider did not run: the
	// batch's 24-hour window ended first, or the batch was cancelled.
	OutcomeBatchExpired  Outcome = "batch_expired"
	OutcomeBatchCanceled Outcome = "batch_canceled"
	// OutcomeShadow marks the calls of shadow labelling (the tier above's
	// answer and the judge's verdict): spend on labels, not on the answer.
	// Attempt.Error says when such a call failed.
	OutcomeShadow Outcome = "shadow"
	// OutcomeCacheHit is an answer taken from the response cache (a
	// routes file's cache: key): no call, $0. It is neither a call nor an
	// error of its model.
	OutcomeCacheHit Outcome = "cache_hit"
)

// Attempt is one call (or one deliberate skip) of one model for one prompt:
// one request_log row.
type Attempt struct {
	Attempt      int           // 1-based, across every model of this delivery
	Model        string        // "provider/model" as written in the routes file
	Outcome      Outcome       // what happened
	HTTPStatus   int           // 0 when no HTTP exchange took place
	Error        string        // short reason, secrets removed; empty on success
	InputTokens  int           // billed input tokens (cache tokens excluded)
	OutputTokens int           // billed output tokens
	CostUSD      float64       // cost of this call
	Estimated    bool          // usage estimated locally, not reported by the provider
	Latency      time.Duration // wall time of the call
	StartedAt    time.Time
	// ProviderBatch is the provider's batch id when the call was made
	// through a batch API (request_log.provider_batch_id; the cost is at
	// the batch price); "" for a synchronous call.
	ProviderBatch string
}

// Status is the final state of a prompt in results.status.
type Status string

// Result statuses.
const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Result is the outcome of one delivery of one job: a results row and its
// request_log rows.
type Result struct {
	Job      Job
	Tier     Tier
	Signals  Signals
	Status   Status
	Delivery int // JetStream delivery count of the message that produced this result

	ModelUsed    string // model whose answer was kept (or the last one tried when failed)
	Response     string
	FinishReason string
	InputTokens  int     // tokens of the kept answer
	OutputTokens int     // tokens of the kept answer
	CostUSD      float64 // sum over Attempts
	Latency      time.Duration
	Error        string // reason when Status is failed

	Attempts    []Attempt
	CompletedAt time.Time
	WorkerID    string

	// Handoff, when set (Status is then ""), records the prompt for a
	// provider batch of Handoff.Model in the same transaction as Attempts.
	Handoff *Handoff

	// Parked, on a result without a Status, asks the store to keep the job
	// until its batch is resumed: the batch was paused, so the message is
	// taken off the queue without a model call.
	Parked bool
	// ParkedInStream, with Parked: the message itself is already kept in
	// the stream (queue.Conn.Park; STORE_PROMPTS=false), so the store
	// records only the prompt's id, no text.
	ParkedInStream bool
	// BudgetHolds are the ids of the budget holds (store.Reserve) taken
	// before this delivery's calls; the store releases them in the
	// transaction that logs the calls.
	BudgetHolds []int64
	// Shadow is the judge's verdict when the prompt was shadowed; nil
	// otherwise. It is stored as a labels row with the results row.
	Shadow *ShadowLabel
	// CacheKey, set on a succeeded result whose answer came from a call
	// while its routes have the response cache on, is the answer's
	// response_cache key (SHA-256 of model, system, prompt and
	// parameters): the store keeps the answer under it with the results row.
	CacheKey []byte
}

// CachedAnswer is an answer kept in the response cache.
type CachedAnswer struct {
	Model        string
	Response     string
	FinishReason string
	InputTokens  int
	OutputTokens int
	StoredAt     time.Time
}

// ShadowLabel is a judge's verdict on the answer kept for a prompt compared
// with the answer of the tier above.
type ShadowLabel struct {
	Model     string // the model whose answer was kept and judged
	Reference string // the tier above's model it was compared with
	Judge     string // the judge model
	AsGood    bool   // the kept answer is as good as the reference
}
