// Package connect opens what every binary connects to, from the plain
// settings of internal/config. It links no provider, cascade or worker
// code, so that enqueue stays small.
package connect

import (
	"context"
	"log/slog"

	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/queue"
)

// QueueConfig maps the NATS settings onto the queue package's configuration,
// with the queue's defaults for what is unset.
func QueueConfig(n config.NATS) queue.Config {
	return queue.Config{
		URL: n.URL, Stream: n.Stream, SubjectPrefix: n.SubjectPrefix, Consumer: n.Consumer,
		AckWait: n.AckWait, MaxDeliver: n.MaxDeliver, MaxAckPending: n.MaxAckPending,
		DuplicateWindow: n.DupeWindow, MaxBytes: n.MaxBytes, MaxMsgs: n.MaxMsgs,
		Replicas: n.Replicas, PlacementTags: n.PlacementTagList(),
		User: n.User, Password: n.Password, Token: n.Token, CredsFile: n.CredsFile,
		NKeySeedFile: n.NKeySeedFile, TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey,
		MaxMessageBytes: n.MaxPromptBytes,
	}.WithDefaults()
}

// Queue connects to NATS with the settings n.
func Queue(ctx context.Context, n config.NATS, log *slog.Logger) (*queue.Conn, error) {
	return queue.Connect(ctx, QueueConfig(n), log)
}
