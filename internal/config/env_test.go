package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/promptcascade/promptcascade/internal/config"
)

func TestWorkerDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.LoadWorker(context.Background(), envconfig.MapLookuper(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Unset tunables stay zero: the queue and worker packages own their
	// defaults (each written once).
	if c.NATS != (config.NATS{}) {
		t.Errorf("nats settings = %+v, want all unset", c.NATS)
	}
	if c.Concurrency != 0 || c.CommitBatch != 0 || c.CommitInterval != 0 || c.DrainTimeout != 0 {
		t.Errorf("worker tunables = %+v, want unset", c)
	}
	if !c.Postgres.StorePrompts || c.ExitWhenIdle || c.Fault != "" || c.LogLevel != "info" {
		t.Errorf("worker settings = %+v", c)
	}
	if c.WorkerID == "" {
		t.Error("WORKER_ID has no default")
	}
	if c.GCHeapFloorMB != 128 {
		t.Errorf("GC_HEAP_FLOOR_MB default %d, want 128", c.GCHeapFloorMB)
	}
}

func TestEnqueueHeapFloor(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]int{"": 128, "0": 0, "512": 512} {
		m := map[string]string{}
		if env != "" {
			m["GC_HEAP_FLOOR_MB"] = env
		}
		c, err := config.LoadEnqueue(context.Background(), envconfig.MapLookuper(m))
		if err != nil {
			t.Fatal(err)
		}
		if c.GCHeapFloorMB != want {
			t.Errorf("GC_HEAP_FLOOR_MB=%q: %d, want %d", env, c.GCHeapFloorMB, want)
		}
	}
	_, err := config.LoadEnqueue(context.Background(), envconfig.MapLookuper(map[string]string{"GC_HEAP_FLOOR_MB": "-1"}))
	if err == nil || !strings.Contains(err.Error(), "GC_HEAP_FLOOR_MB: must not be negative, got -1") {
		t.Errorf("GC_HEAP_FLOOR_MB=-1: err = %v", err)
	}
}

func TestWorkerFromEnvironment(t *testing.T) {
	t.Parallel()
	c, err := config.LoadWorker(context.Background(), envconfig.MapLookuper(map[string]string{
		"NATS_URL": "nats://n:4222", "DATABASE_URL": "postgres://u@h/db", "WORKER_CONCURRENCY": "500",
		"WORKER_ID": "w-7", "LOG_LEVEL": "debug", "WORKER_EXIT_WHEN_IDLE": "true", "STORE_PROMPTS": "false",
		"NATS_ACK_WAIT": "1m", "OPENAI_API_KEY": "sk-x", "GROQ_BASE_URL": "http://groq",
		"NATS_STREAM_REPLICAS": "3", "NATS_STREAM_PLACEMENT_TAGS": "az:a, ssd",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.URL != "nats://n:4222" || c.Postgres.DatabaseURL != "postgres://u@h/db" || c.Concurrency != 500 ||
		c.WorkerID != "w-7" || c.LogLevel != "debug" || !c.ExitWhenIdle || c.Postgres.StorePrompts ||
		c.NATS.AckWait != time.Minute || c.Keys.OpenAIKey != "sk-x" || c.Keys.GroqBaseURL != "http://groq" ||
		c.NATS.Replicas != 3 || len(c.NATS.PlacementTagList()) != 2 || c.NATS.PlacementTagList()[1] != "ssd" {
		t.Errorf("config = %+v", c)
	}
}

func TestBadEnvironmentNamesTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WORKER_CONCURRENCY": "lots"}, "WORKER_CONCURRENCY: invalid value"},
		{map[string]string{"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY: must be a positive integer, got 0"},
		{map[string]string{"NATS_ACK_WAIT": "30"}, "NATS_ACK_WAIT: invalid value"},
		{map[string]string{"NATS_ACK_WAIT": "-1s"}, "NATS_ACK_WAIT: must be a positive duration"},
		{map[string]string{"LOG_LEVEL": "verbose"}, `LOG_LEVEL: "verbose" is not one of debug, info, warn, error`},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"STORE_PROMPTS": "maybe"}, "STORE_PROMPTS: invalid value"},
		{map[string]string{"NATS_URL": " "}, "NATS_URL: must not be empty"},
		{map[string]string{"NATS_TLS_CERT": "c.pem"}, "NATS_TLS_CERT and NATS_TLS_KEY: set both or neither"},
		{map[string]string{"WORKER_FAULT": "sometimes"}, "WORKER_FAULT"},
		{map[string]string{"NATS_MAX_DELIVER": "0"}, "NATS_MAX_DELIVER"},
		{map[string]string{"NATS_STREAM_REPLICAS": "7"}, "NATS_STREAM_REPLICAS: must be 1 to 5"},
		{map[string]string{"NATS_STREAM_REPLICAS": "three"}, "NATS_STREAM_REPLICAS: invalid value"},
		{map[string]string{"NATS_STREAM_PLACEMENT_TAGS": "az:a,,ssd"}, "NATS_STREAM_PLACEMENT_TAGS: tag 2 is empty"},
		{map[string]string{"GC_HEAP_FLOOR_MB": "-5"}, "GC_HEAP_FLOOR_MB: must not be negative, got -5 (0 turns the floor off)"},
		{map[string]string{"GC_HEAP_FLOOR_MB": "lots"}, "GC_HEAP_FLOOR_MB: invalid value"},
	} {
		_, err := config.LoadWorker(context.Background(), envconfig.MapLookuper(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: err = %v, want %q", tc.env, err, tc.want)
		}
	}
}

func TestEnvErrorsNeverEchoSecrets(t *testing.T) {
	t.Parallel()
	_, err := config.LoadWorker(context.Background(), envconfig.MapLookuper(map[string]string{
		"OPENAI_API_KEY": "sk-SECRET-canary", "WORKER_CONCURRENCY": "x",
	}))
	if err == nil || strings.Contains(err.Error(), "sk-SECRET-canary") {
		t.Fatalf("err = %v", err)
	}
}
