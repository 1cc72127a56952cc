package queue

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidBatchName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "batch-2026_01", "ABC123", strings.Repeat("x", 128)} {
		if err := ValidBatchName(ok); err != nil {
			t.Errorf("ValidBatchName(%q) = %v", ok, err)
		}
	}
	cases := []struct{ name, mention string }{
		{"", "empty"},
		{strings.Repeat("x", 129), "129"},
		{"a.b", `'.' at position 2`},
		{"a b", `' ' at position 2`},
		{"a*", `'*'`},
		{"a>", `'>'`},
		{"a/b", `'/'`},
		{"naïve", `'ï'`},
		{"tab\there", `'\t'`},
	}
	for _, c := range cases {
		err := ValidBatchName(c.name)
		if !errors.Is(err, ErrInvalidBatchName) {
			t.Errorf("ValidBatchName(%q) = %v, want ErrInvalidBatchName", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ValidBatchName(%q) = %q, should mention %q", c.name, err, c.mention)
		}
	}
	if got := Subject("prompts", "b1"); got != "prompts.b1" {
		t.Errorf("Subject = %q", got)
	}
}

func TestValidJobID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"1", "line-42", "a/b c.d", "ünïcode"} {
		if err := ValidJobID(ok); err != nil {
			t.Errorf("ValidJobID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", "a\r\nNats-Msg-Id: x", "nul\x00", "\xff", strings.Repeat("i", 1025)} {
		if err := ValidJobID(bad); !errors.Is(err, ErrInvalidJobID) {
			t.Errorf("ValidJobID(%q) = %v, want ErrInvalidJobID", bad, err)
		}
	}
}

func TestDecodeJob(t *testing.T) {
	t.Parallel()
	j, err := DecodeJob([]byte(`{"batch":"b","id":"1","prompt":"hi","max_tokens":5,"metadata":{"k":1}}`), 0)
	if err != nil || j.BatchID != "b" || j.ID != "1" || j.Prompt != "hi" || j.MaxTokens != 5 || string(j.Metadata) != `{"k":1}` {
		t.Fatalf("DecodeJob = %+v, %v", j, err)
	}
	for _, bad := range []string{`not json`, `{"batch":"b","id":"1"}`, `{"batch":"b","prompt":"x"}`, `{"id":"1","prompt":"x"}`,
		`{"batch":"b","id":"1","prompt":"   "}`, `{"batch":"b","id":1,"prompt":"x"}`, ``} {
		if _, err := DecodeJob([]byte(bad), 0); !errors.Is(err, ErrBadMessage) {
			t.Errorf("DecodeJob(%q) = %v, want ErrBadMessage", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cases := []struct {
		mod     func(*Config)
		mention string
	}{
		{func(c *Config) { c.URL = "http://host:4222" }, "scheme"},
		{func(c *Config) { c.URL = "nats://u:hunter22@ho st:4222" }, "not a valid URL"},
		{func(c *Config) { c.Stream = "PROM.PTS" }, "Stream"},
		{func(c *Config) { c.Consumer = "a b" }, "Consumer"},
		{func(c *Config) { c.SubjectPrefix = "a..b" }, "SubjectPrefix"},
		{func(c *Config) { c.SubjectPrefix = "a.>" }, "SubjectPrefix"},
		{func(c *Config) { c.AckWait = time.Millisecond }, "AckWait"},
		{func(c *Config) { c.MaxDeliver = -5 }, "MaxDeliver"},
		{func(c *Config) { c.MaxAckPending = -1 }, "MaxAckPending"},
		{func(c *Config) { c.MaxBytes = -2 }, "MaxBytes"},
		{func(c *Config) { c.MaxMsgs = -2 }, "MaxMsgs"},
		{func(c *Config) { c.TLSCert = "c.pem" }, "TLSKey"},
		{func(c *Config) { c.Token, c.User = "t", "u" }, "Token"},
	}
	for _, c := range cases {
		cfg := Config{}.WithDefaults()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Validate() = %v, want mention of %q", err, c.mention)
		}
		if err != nil && strings.Contains(err.Error(), "hunter22") {
			t.Errorf("password leaked: %v", err)
		}
	}
}
