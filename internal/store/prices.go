package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// ModelPrice is the price of one model of the routes a worker applies to a
// batch: a model_prices row. Prices are USD per million tokens.
type ModelPrice struct {
	Model             string
	InputPerMTok      float64
	OutputPerMTok     float64
	CacheReadPerMTok  float64
	CacheWritePerMTok float64
	ContextWindow     int
	Tiers             []string // tiers whose cascade lists the model
}

// PricesFunc returns the prices of every model of the routes applied to
// batchID: the batch's own routes when it has some (enqueue --routes),
// else the worker's. It is called once per batch and process, from Write,
// before its transaction; an error fails that Write (return a transient
// one only for what a retry can mend).
type PricesFunc func(ctx context.Context, batchID string) ([]ModelPrice, error)

// WithPrices makes Write record, with the first results of each batch this
// process writes, the prices its routes apply (model_prices), so that cost
// questions (the savings view) need no source code.
func WithPrices(f PricesFunc) Option {
	return func(o *options) { o.prices = f }
}

// priced remembers the batches whose prices this process recorded.
type priced struct {
	f    PricesFunc
	done sync.Map // batch id -> struct{}
}

const insertPricesSQL = `
INSERT INTO model_prices (batch_id, model, input_usd_per_mtok, output_usd_per_mtok,
    cache_read_usd_per_mtok, cache_write_usd_per_mtok, context_window, tiers, worker_id)
SELECT p.batch_id, p.model, p.input::numeric(18, 10), p.output::numeric(18, 10),
    p.cache_read::numeric(18, 10), p.cache_write::numeric(18, 10), p.context_window,
    string_to_array(p.tiers, ','), $9
FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::int[], $8::text[])
    AS p (batch_id, model, input, output, cache_read, cache_write, context_window, tiers)
ORDER BY 1, 2
ON CONFLICT (batch_id, model) DO NOTHING`

// queuePrices queues into b the model_prices rows of the batches not
// recorded yet by this process. It returns those batch ids (to be marked
// recorded once the transaction commits) and whether a statement was queued.
func (s *Store) queuePrices(ctx context.Context, b *pgx.Batch, batchIDs []string, workerID string) ([]string, bool, error) {
	if s.prices == nil {
		return nil, false, nil
	}
	var todo []string
	var batch, model, tiers []string
	var in, out, cr, cw []float64
	var cwin []int32
	for _, id := range batchIDs {
		if _, ok := s.prices.done.Load(id); ok {
			continue
		}
		todo = append(todo, id)
		ps, err := s.prices.f(ctx, id)
		if err != nil {
			return nil, false, fmt.Errorf("store: write: prices of batch %q: %w", id, err)
		}
		for _, p := range ps {
			if badNumber(p.InputPerMTok) || badNumber(p.OutputPerMTok) || badNumber(p.CacheReadPerMTok) ||
				badNumber(p.CacheWritePerMTok) || !fitInt32(p.ContextWindow) || p.Model == "" {
				return nil, false, fmt.Errorf("store: write: price of model %q for batch %q is not storable: %+v", p.Model, id, p)
			}
			batch = append(batch, id)
			model = append(model, clean(p.Model))
			in, out = append(in, p.InputPerMTok), append(out, p.OutputPerMTok)
			cr, cw = append(cr, p.CacheReadPerMTok), append(cw, p.CacheWritePerMTok)
			cwin = append(cwin, int32(p.ContextWindow))
			tiers = append(tiers, clean(strings.Join(p.Tiers, ",")))
		}
	}
	if len(batch) == 0 {
		return todo, false, nil
	}
	b.Queue(insertPricesSQL, batch, model, in, out, cr, cw, cwin, tiers, nullText(workerID))
	return todo, true, nil
}

// markPriced records that the prices of ids are stored.
func (s *Store) markPriced(ids []string) {
	if s.prices == nil {
		return
	}
	for _, id := range ids {
		s.prices.done.Store(id, struct{}{})
	}
}

// ModelPrices returns the model_prices rows of batchID, by model.
func (s *Store) ModelPrices(ctx context.Context, batchID string) ([]ModelPrice, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT model, input_usd_per_mtok::float8, output_usd_per_mtok::float8,
			cache_read_usd_per_mtok::float8, cache_write_usd_per_mtok::float8, context_window, tiers
		FROM model_prices WHERE batch_id = $1 ORDER BY model`, clean(batchID))
	if err != nil {
		return nil, fmt.Errorf("store: model prices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ModelPrice, error) {
		var p ModelPrice
		err := row.Scan(&p.Model, &p.InputPerMTok, &p.OutputPerMTok, &p.CacheReadPerMTok, &p.CacheWritePerMTok,
			&p.ContextWindow, &p.Tiers)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: model prices: %w", err)
	}
	return out, nil
}

// BatchRoutesSum returns the hash of batchID's own routes (enqueue
// --routes, retry --routes: the latest version), nil when it has none or
// is unknown.
func (s *Store) BatchRoutesSum(ctx context.Context, batchID string) ([]byte, error) {
	var sum []byte
	err := s.pool.QueryRow(ctx, `SELECT routes_sha256 FROM batches WHERE batch_id = $1`, clean(batchID)).Scan(&sum)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: routes of batch %q: %w", batchID, err)
	}
	return sum, nil
}
