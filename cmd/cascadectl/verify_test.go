package main

import (
	"testing"

	"github.com/promptcascade/promptcascade/internal/store"
)

func TestSplitQueued(t *testing.T) {
	for _, c := range []struct {
		name             string
		vMissing, lost   int64
		acct             store.MissingAccount
		idle             bool
		queued, stranded int64
	}{
		{name: "busy consumer: the rest is queued",
			vMissing: 958, acct: store.MissingAccount{Missing: 958, AtProvider: 600, Queued: 358}, queued: 358},
		{name: "idle consumer: messages without results are stranded",
			vMissing: 958, acct: store.MissingAccount{Missing: 958, AtProvider: 600, Queued: 358}, idle: true, stranded: 358},
		// The CI failure of dcb499c: the poller stored 358 answers from a
		// provider batch between the two snapshots while the consumer was
		// idle. They are answered, not stranded.
		{name: "idle consumer, provider answers between the snapshots",
			vMissing: 958, acct: store.MissingAccount{Missing: 600, AtProvider: 600}, idle: true, queued: 358},
		{name: "idle consumer, some answered since and some stranded",
			vMissing: 100, acct: store.MissingAccount{Missing: 90, AtProvider: 50, Queued: 40}, idle: true, queued: 10, stranded: 40},
		{name: "handed back after the stream was read is queued",
			vMissing: 100, acct: store.MissingAccount{Missing: 100, AtProvider: 60, HandedBack: 40}, idle: true, queued: 40},
		{name: "lost and dead-lettered are neither",
			vMissing: 100, lost: 5, acct: store.MissingAccount{Missing: 100, Lost: 5, DeadLettered: 7, Queued: 88}, idle: true, stranded: 88},
	} {
		q, s := splitQueued(c.vMissing, c.lost, c.acct, c.idle)
		if q != c.queued || s != c.stranded {
			t.Errorf("%s: queued %d stranded %d, want %d and %d", c.name, q, s, c.queued, c.stranded)
		}
	}
}
