package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/providerbatch"
	"github.com/promptcascade/promptcascade/internal/worker"
)

// faultHooks turns WORKER_FAULT into worker hooks that end the process with
// status 137, as kill -9 would, once after prompts have been committed. Only
// the crash tests set it; the worker library itself never exits.
func faultHooks(point string, after int, log *slog.Logger) worker.Hooks {
	crash := func() {
		log.Error("fault injection: exiting now", "point", point)
		os.Exit(137)
	}
	switch point {
	case config.FaultDuringCall:
		// Let the cascade start its model call, then die while it runs.
		return worker.Hooks{BeforeCall: func(committed int) {
			if committed >= after {
				time.AfterFunc(5*time.Millisecond, crash)
			}
		}}
	case config.FaultBeforeCommit:
		return worker.Hooks{BeforeCommit: func(committed int) {
			if committed >= after {
				crash()
			}
		}}
	case config.FaultAfterCommit:
		return worker.Hooks{AfterCommit: func(committed int) {
			if committed > after {
				crash()
			}
		}}
	}
	return worker.Hooks{}
}

// batchFaultHooks turns the provider batch fault points into hooks that end
// the process like faultHooks does: right after the provider accepted a
// batch (its id not yet stored), or after the first committed chunk of an
// ingest.
func batchFaultHooks(point string, log *slog.Logger) providerbatch.Hooks {
	crash := func() {
		log.Error("fault injection: exiting now", "point", point)
		os.Exit(137)
	}
	switch point {
	case config.FaultBatchAfterCreate:
		return providerbatch.Hooks{AfterCreate: func(string, string) { crash() }}
	case config.FaultBatchMidIngest:
		return providerbatch.Hooks{AfterIngestChunk: func(string, int) { crash() }}
	}
	return providerbatch.Hooks{}
}
