package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/store"
	"github.com/promptcascade/promptcascade/internal/wire"
)

const batchesUsage = "batches [list [--all] [--limit N] [--format table|json] | show ID | cancel ID]"

// cmdBatches lists, shows and cancels provider batches (the batches the
// workers sent to a provider's batch API for batch-mode models).
func cmdBatches(ctx context.Context, e *env, args []string) error {
	sub := "list"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "list":
		return batchesList(ctx, e, args)
	case "show", "cancel":
		fs := newFlags("batches "+sub, e)
		pos, err := parseInterleaved(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return &exitError{2, fmt.Errorf("%s: want one ID (our id, the label, or the provider's batch id)", sub)}
		}
		if sub == "show" {
			return batchesShow(ctx, e, pos[0])
		}
		return batchesCancel(ctx, e, pos[0])
	}
	return &exitError{2, fmt.Errorf("unknown subcommand %q (want list, show or cancel)", sub)}
}

func batchesList(ctx context.Context, e *env, args []string) error {
	fs := newFlags("batches list", e)
	all := fs.Bool("all", false, "include batches done more than a day ago")
	limit := fs.Int("limit", 50, "most batches to list, newest first")
	format := fs.String("format", "table", "table or json")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		return &exitError{2, fmt.Errorf("--format: want table or json, got %q", *format)}
	}
	st, err := e.store(ctx)
	if err != nil {
		return err
	}
	bs, err := providerbatch.List(ctx, st.Pool(), max(*limit, 1), *all)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		for _, b := range bs {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tmodel\tstate\tprovider_status\titems\twaiting\tcost_usd\tage\tprovider_batch_id")
	for _, b := range bs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%.6f\t%s\t%s\n", b.ID, b.Model, b.State, dash(b.ProviderStatus), b.Items, b.Waiting,
			b.CostUSD, time.Since(b.CreatedAt).Round(time.Second), dash(b.ProviderBatchID))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// findBatch looks a provider batch up by our id, its label or the
// provider's id; one that does not exist exits 1.
func findBatch(ctx context.Context, e *env, ref string) (*store.Store, providerbatch.Batch, error) {
	st, err := e.store(ctx)
	if err != nil {
		return nil, providerbatch.Batch{}, err
	}
	b, err := providerbatch.Show(ctx, st.Pool(), ref)
	if errors.Is(err, providerbatch.ErrNoBatch) {
		return nil, b, &exitError{1, err}
	}
	return st, b, err
}

func batchesShow(ctx context.Context, e *env, ref string) error {
	st, b, err := findBatch(ctx, e, ref)
	if err != nil {
		return err
	}
	counts, err := providerbatch.ItemCounts(ctx, st.Pool(), b.ID)
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "provider batch %d (%s)\n", b.ID, b.Label)
	fmt.Fprintf(w, "  model            %s\n", b.Model)
	fmt.Fprintf(w, "  state            %s\n", b.State)
	fmt.Fprintf(w, "  provider id      %s\n", dash(b.ProviderBatchID))
	fmt.Fprintf(w, "  provider status  %s\n", dash(b.ProviderStatus))
	fmt.Fprintf(w, "  requests         %d (%d bytes)\n", b.Items, b.Bytes)
	fmt.Fprintf(w, "  created          %s\n", b.CreatedAt.UTC().Format(time.RFC3339))
	if b.SubmittedAt != nil {
		fmt.Fprintf(w, "  submitted        %s\n", b.SubmittedAt.UTC().Format(time.RFC3339))
	}
	if b.DoneAt != nil {
		fmt.Fprintf(w, "  ingested         %s\n", b.DoneAt.UTC().Format(time.RFC3339))
	}
	if b.CancelRequestedAt != nil {
		fmt.Fprintf(w, "  cancel requested %s\n", b.CancelRequestedAt.UTC().Format(time.RFC3339))
	}
	if b.CancelError != "" {
		fmt.Fprintf(w, "  cancel refused   %s\n", b.CancelError)
	}
	fmt.Fprintf(w, "  cost_usd         %.6f (batch price)\n", b.CostUSD)
	if b.Error != "" {
		fmt.Fprintf(w, "  error            %s\n", b.Error)
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "  items:")
	for _, k := range keys {
		fmt.Fprintf(w, "    %-32s %d\n", k, counts[k])
	}
	return nil
}

// batchesCancel asks the provider to cancel a submitted batch. The workers'
// poller then ingests what the provider returns: answered requests are
// stored, cancelled ones move on to the next model of their tier.
func batchesCancel(ctx context.Context, e *env, ref string) error {
	st, b, err := findBatch(ctx, e, ref)
	if err != nil {
		return err
	}
	if b.State != "submitted" || b.ProviderBatchID == "" {
		return &exitError{1, fmt.Errorf("provider batch %d is %s: only a submitted batch can be cancelled", b.ID, b.State)}
	}
	clients, source, err := batchClients(ctx, e)
	if err != nil {
		return err
	}
	client, ok := clients[b.Model]
	if !ok {
		return &exitError{1, fmt.Errorf("%s is not a batch-mode model of %s; set ROUTES_FILE to the workers' routes file", b.Model, source)}
	}
	if err := providerbatch.Cancel(ctx, st.Pool(), client, b); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "provider batch %d (%s): cancellation requested; the workers ingest what it returns\n", b.ID, b.ProviderBatchID)
	return nil
}

// batchClients builds the batch clients of the routes' batch-mode models
// (ROUTES_FILE, the provider keys), by model, and names the routes' source.
func batchClients(ctx context.Context, e *env) (map[string]providerbatch.Client, string, error) {
	cfg, err := e.config(ctx)
	if err != nil {
		return nil, "", err
	}
	prices, err := config.LoadPrices(cfg.PricingFile)
	if err != nil {
		return nil, "", err
	}
	routes, err := config.LoadRoutes(cfg.RoutesFile, prices)
	if err != nil {
		return nil, "", err
	}
	out := map[string]providerbatch.Client{}
	if len(routes.BatchModels()) == 0 {
		return out, routes.Source, nil
	}
	reg, err := wire.Registry(routes, cfg.Keys, os.LookupEnv)
	if err != nil {
		return nil, "", err
	}
	for name := range routes.BatchModels() {
		p, _, err := reg.Resolve(name)
		if err != nil {
			return nil, "", err
		}
		client, ok := p.(providerbatch.Client)
		if !ok {
			return nil, "", &exitError{1, fmt.Errorf("%s: provider has no batch API", name)}
		}
		out[name] = client
	}
	return out, routes.Source, nil
}
