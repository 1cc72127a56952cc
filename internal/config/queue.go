package config

import "github.com/promptcascade/promptcascade/internal/queue"

// QueueConfig maps the NATS settings onto the queue package's configuration.
func QueueConfig(n NATS) queue.Config {
	return queue.Config{
		URL: n.URL, Stream: n.Stream, SubjectPrefix: n.SubjectPrefix, Consumer: n.Consumer,
		AckWait: n.AckWait, MaxDeliver: n.MaxDeliver, MaxAckPending: n.MaxAckPending,
		DuplicateWindow: n.DupeWindow, MaxBytes: n.MaxBytes, MaxMsgs: n.MaxMsgs,
		User: n.User, Password: n.Password, Token: n.Token, CredsFile: n.CredsFile,
		NKeySeedFile: n.NKeySeedFile, TLSCA: n.TLSCA, TLSCert: n.TLSCert, TLSKey: n.TLSKey,
	}
}
