package limit

import (
	"math"
	"time"
)

// Bucket is a token bucket: it holds up to size tokens and gains rate tokens
// per second. A request for more than size tokens is let through once the
// bucket is full, and leaves it in debt, so that a request larger than the
// bucket is slow rather than impossible. The zero Bucket lets everything
// through. It is not safe for concurrent use. The simulated provider
// enforces its capacity with the same Bucket.
type Bucket struct {
	on     bool
	rate   float64 // tokens per second
	size   float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket for a per-minute limit, holding one
// second's worth (at least 1): providers enforce per-minute limits over short
// windows.
func NewBucket(perMinute float64, now time.Time) Bucket {
	rate := perMinute / 60
	size := math.Max(1, rate)
	return Bucket{on: true, rate: rate, size: size, tokens: size, last: now}
}

func (b *Bucket) refill(now time.Time) {
	if !b.on {
		return
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.size, b.tokens+dt*b.rate)
	}
	b.last = now
}

// Wait is how long until n tokens may be taken; 0 when now.
func (b *Bucket) Wait(now time.Time, n float64) time.Duration {
	if !b.on {
		return 0
	}
	b.refill(now)
	need := math.Min(n, b.size)
	if b.tokens >= need {
		return 0
	}
	if b.rate <= 0 {
		return time.Hour
	}
	return time.Duration(math.Ceil((need - b.tokens) / b.rate * 1e9))
}

// Take removes n tokens (the bucket may go into debt).
func (b *Bucket) Take(n float64) {
	if b.on {
		b.tokens -= n
	}
}

// Give returns n tokens (a correction of an estimate), never above the
// bucket's size.
func (b *Bucket) Give(n float64) {
	if b.on {
		b.tokens = math.Min(b.size, b.tokens+n)
	}
}

// window counts events in the last span, in ten slots of span/10.
type window struct {
	span  time.Duration
	slots [10]struct {
		start int64 // slot start, Unix nanoseconds
		n     int
	}
	first time.Time
}

func (w *window) slot(now time.Time) int64 {
	d := int64(w.span / 10)
	return now.UnixNano() / d * d
}

func (w *window) add(now time.Time) {
	if w.first.IsZero() {
		w.first = now
	}
	s := w.slot(now)
	i := int(uint64(s/int64(w.span/10)) % 10)
	if w.slots[i].start != s {
		w.slots[i].start, w.slots[i].n = s, 0
	}
	w.slots[i].n++
}

// rate is events per second over the last span (or since the first event,
// when that is more recent).
func (w *window) rate(now time.Time) float64 {
	if w.first.IsZero() {
		return 0
	}
	slot := w.span / 10
	cur := w.slot(now)
	from := cur - int64(w.span) + int64(slot)
	n := 0
	for _, s := range w.slots {
		if s.start >= from {
			n += s.n
		}
	}
	span := 9*slot + time.Duration(now.UnixNano()-cur)
	if since := now.Sub(w.first); since < span {
		span = since
	}
	span = max(span, slot)
	return float64(n) / span.Seconds()
}
