package sim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/tokens"
)

// Batch mode: the simulated provider also accepts provider batches, like
// OpenAI's, Anthropic's and Gemini's batch APIs. A batch ends BatchDelay
// after it was created; each request is then answered as a synchronous call
// with the same seed would be (so weak answers and server errors show up as
// succeeded-but-weak and errored items), except a share ExpireRate that
// expires without an answer. Batches live in the process's memory: a batch
// of a process that died is gone, and GetBatch reports not_found for it.

// BatchConfig configures batch mode.
type BatchConfig struct {
	Delay      time.Duration // time from creation to results (0: at the next poll)
	ExpireRate float64       // share of requests that expire, in [0,1]
	Now        func() time.Time
}

type simBatch struct {
	b        llm.Batch
	model    string
	reqs     []llm.BatchRequest
	readyAt  time.Time
	canceled bool
}

type batches struct {
	mu     sync.Mutex
	cfg    BatchConfig            // every model's, unless set per model
	models map[string]BatchConfig // per bare model id
	seq    int
	byID   map[string]*simBatch
}

// SetBatch sets the batch-mode behaviour of model (a bare id), or of every
// model when model is "". The zero BatchConfig is the default: results at
// the next poll, none expired.
func (p *Provider) SetBatch(model string, cfg BatchConfig) {
	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	cfg.ExpireRate = clamp01(cfg.ExpireRate)
	if model == "" {
		p.batch.cfg = cfg
		return
	}
	if p.batch.models == nil {
		p.batch.models = make(map[string]BatchConfig)
	}
	p.batch.models[model] = cfg
}

func (bs *batches) config(model string) BatchConfig {
	if c, ok := bs.models[model]; ok {
		return c
	}
	return bs.cfg
}

func (bs *batches) now() time.Time {
	if bs.cfg.Now != nil {
		return bs.cfg.Now()
	}
	return time.Now()
}

// SubmitBatch accepts a batch of requests for model.
func (p *Provider) SubmitBatch(ctx context.Context, label, model string, reqs []llm.BatchRequest) (llm.Batch, error) {
	if _, ok := p.models[model]; !ok {
		return llm.Batch{}, &llm.Error{Class: llm.ClassNotFound, Provider: Name, Model: model, HTTPStatus: 404,
			Message: fmt.Sprintf("model %q does not exist (simulated)", model)}
	}
	if err := ctx.Err(); err != nil {
		return llm.Batch{}, timeoutError(model, err)
	}
	for _, r := range reqs {
		if !llm.ValidCustomID(r.CustomID) {
			return llm.Batch{}, &llm.Error{Class: llm.ClassBadRequest, Provider: Name, Model: model, HTTPStatus: 400,
				Message: fmt.Sprintf("custom id %q is invalid (simulated)", r.CustomID)}
		}
	}
	bs := &p.batch
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.byID == nil {
		bs.byID = make(map[string]*simBatch)
	}
	bs.seq++
	now := bs.now()
	sb := &simBatch{
		b: llm.Batch{ID: "simbatch_" + strconv.Itoa(bs.seq) + "_" + strconv.FormatInt(now.UnixNano(), 36), Label: label,
			State: llm.BatchRunning, ProviderStatus: "in_progress", CreatedAt: now, Total: len(reqs)},
		model:   model,
		reqs:    append([]llm.BatchRequest(nil), reqs...),
		readyAt: now.Add(bs.config(model).Delay),
	}
	bs.byID[sb.b.ID] = sb
	return sb.b, nil
}

func (bs *batches) get(id string) (*simBatch, error) {
	sb, ok := bs.byID[id]
	if !ok {
		return nil, &llm.Error{Class: llm.ClassNotFound, Provider: Name, Model: id, HTTPStatus: 404, Message: "no such batch (simulated)"}
	}
	if sb.b.State == llm.BatchRunning && (sb.canceled || !bs.now().Before(sb.readyAt)) {
		sb.b.State, sb.b.ProviderStatus, sb.b.Done = llm.BatchEnded, "ended", sb.b.Total
	}
	return sb, nil
}

// GetBatch reports a batch.
func (p *Provider) GetBatch(_ context.Context, id string) (llm.Batch, error) {
	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	sb, err := p.batch.get(id)
	if err != nil {
		return llm.Batch{}, err
	}
	return sb.b, nil
}

// CancelBatch ends a batch at once; the requests not answered are canceled.
func (p *Provider) CancelBatch(_ context.Context, id string) error {
	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	sb, ok := p.batch.byID[id]
	if !ok {
		_, err := p.batch.get(id)
		return err
	}
	if sb.b.State == llm.BatchRunning {
		sb.canceled = true
	}
	return nil
}

// ListBatches lists the batches created at or after since, newest first.
func (p *Provider) ListBatches(_ context.Context, since time.Time) ([]llm.Batch, error) {
	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	var out []llm.Batch
	for id := range p.batch.byID {
		sb, _ := p.batch.get(id)
		if !sb.b.CreatedAt.Before(since) {
			out = append(out, sb.b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// BatchResults answers every request of an ended batch, without latency.
func (p *Provider) BatchResults(_ context.Context, id string) ([]llm.BatchResult, error) {
	p.batch.mu.Lock()
	sb, err := p.batch.get(id)
	p.batch.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p.batch.mu.Lock()
	expire := p.batch.config(sb.model).ExpireRate
	p.batch.mu.Unlock()
	if sb.b.State != llm.BatchEnded {
		return nil, &llm.Error{Class: llm.ClassBadRequest, Provider: Name, Model: id, HTTPStatus: 409, Message: "batch has not ended (simulated)"}
	}
	m := p.models[sb.model]
	out := make([]llm.BatchResult, 0, len(sb.reqs))
	for _, r := range sb.reqs {
		res := llm.BatchResult{CustomID: r.CustomID}
		rr := newRNG(r.Request.Seed ^ m.salt ^ 0xba7c4)
		switch {
		case sb.canceled:
			res.State = llm.ItemCanceled
		case rr.Float() < expire:
			res.State = llm.ItemExpired
		default:
			req := r.Request
			req.Model = sb.model
			pl := m.plan(req)
			switch pl.kind {
			case kindOK, kindWeak:
				res.State = llm.ItemSucceeded
				res.Response = llm.Response{Text: pl.text, FinishReason: pl.finish,
					InputTokens:  p.systemTokens(req.System) + tokens.Count(req.Prompt),
					OutputTokens: pl.outTokens, HTTPStatus: 200, RequestID: requestID(req.Seed)}
			default: // a server error, rate limit or timeout of a synchronous call: an errored item
				res.State = llm.ItemErrored
				res.Err = &llm.Error{Class: llm.ClassServerError, Provider: Name, Model: sb.model, HTTPStatus: 500,
					Message: "internal server error (simulated batch item)"}
			}
		}
		out = append(out, res)
	}
	return out, nil
}
