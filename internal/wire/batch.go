package wire

import (
	"fmt"
	"sort"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/llm"
	"github.com/promptcascade/promptcascade/internal/llm/sim"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
)

// BatchModels returns the routes' batch-mode models with their providers'
// batch clients from reg, sorted by name; a simulated model also gets its
// batch delay and expiry share. A provider without a batch API is an error
// naming the model.
func BatchModels(r *config.Routes, reg *llm.Registry) ([]providerbatch.Model, error) {
	var out []providerbatch.Model
	for name, m := range r.BatchModels() {
		p, id, err := reg.Resolve(name)
		if err != nil {
			return nil, err
		}
		client, ok := p.(providerbatch.Client)
		if !ok {
			return nil, fmt.Errorf("models.%s.batch: the %T provider has no batch API", name, p)
		}
		if sp, ok := p.(*sim.Provider); ok {
			sp.SetBatch(id, sim.BatchConfig{Delay: m.Batch.SimDelay, ExpireRate: m.Batch.SimExpireRate})
		}
		out = append(out, providerbatch.Model{Name: name, Client: client, Price: m.Price, Limits: providerbatch.Limits{
			MaxRequests: m.Batch.MaxRequests, MaxBytes: m.Batch.MaxBytes, FlushAfter: m.Batch.FlushAfter, PollEvery: m.Batch.PollEvery,
		}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
