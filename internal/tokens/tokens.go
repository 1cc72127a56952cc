// Package tokens counts and truncates text in tokens of tiktoken's
// o200k_base encoding (GPT-4o and later; a fair estimate for every other
// provider): the classifier's token signal, cost estimates, the simulated
// provider's usage. Its vocabulary is embedded in the binary: it never
// touches the network.
package tokens

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding is the tiktoken encoding Count uses: that of GPT-4o and
// later OpenAI models, and a fair estimate for every other provider.
const Encoding = "o200k_base"

var tokenizer struct {
	once sync.Once
	enc  *tiktoken.Tiktoken
}

// encoder returns tiktoken-go's o200k_base encoder, built once: Truncate
// needs its token ids, and counting falls back to it if the package's own
// counter (o200k.go) cannot be built. The offline loader is set before the
// first GetEncoding call, so the BPE ranks come from files embedded in the
// binary and nothing is downloaded. It returns nil only if the embedded files
// are unusable, which the package tests rule out.
func encoder() *tiktoken.Tiktoken {
	tokenizer.once.Do(func() {
		tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
		enc, err := tiktoken.GetEncoding(Encoding)
		if err == nil {
			tokenizer.enc = enc
		}
	})
	return tokenizer.enc
}

// Count returns the number of o200k_base tokens in s: always
// len(EncodeOrdinary(s)) of tiktoken-go's o200k_base encoder, invalid UTF-8
// included (read as U+FFFD, as tiktoken-go reads it). Special-token text such
// as "<|endoftext|>" is counted as ordinary text. The vocabulary is loaded on
// first use (about 60 ms of CPU); Count is safe for concurrent use.
//
// Counting costs about 5 ns per byte of English text (20–50 ns for other
// scripts) and allocates nothing; Count also remembers recent texts (up
// to 16 KiB each, in a fixed table of 4096 slots), so counting the same
// prompt again (the worker, then the simulated provider, then a retry) costs
// one hash.
func Count(s string) int {
	if s == "" {
		return 0
	}
	if len(s) > cacheMaxLen {
		return countUncached(s)
	}
	slot := &countCache.slots[maphash.String(countCache.seed, s)%cacheSlots]
	if e := slot.Load(); e != nil && e.text == s {
		return e.n
	}
	n := countUncached(s)
	slot.Store(newCacheEntry(s, n))
	return n
}

const (
	cacheSlots  = 4096
	cacheMaxLen = 16 << 10
)

type cacheEntry struct {
	text string
	n    int
}

var countCache = struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[cacheEntry]
	chunk atomic.Pointer[entryChunk] // where short texts' entries come from
}{seed: maphash.MakeSeed()}

// Entries for texts of up to chunkTextMax bytes (prompts, answer
// fragments: most misses) are handed out of chunks of entryChunkLen, so a
// miss costs a heap allocation only once per chunk; every text counted
// for the first time used to cost one. An entry is written once, before
// its slot publishes it, and never reused. A live entry keeps its whole
// chunk, and so at most entryChunkLen-1 evicted short texts, from the
// garbage collector: at most cacheSlots × (entryChunkLen-1) ×
// chunkTextMax bytes (15 MB) in the worst case, far less in practice, as a
// chunk's entries are stored and evicted at about the same time.
const (
	entryChunkLen = 16
	chunkTextMax  = 256
)

type entryChunk struct {
	entries [entryChunkLen]cacheEntry
	used    atomic.Int32 // entries handed out (may run past entryChunkLen)
}

func newCacheEntry(s string, n int) *cacheEntry {
	if len(s) > chunkTextMax {
		return &cacheEntry{text: s, n: n}
	}
	for {
		c := countCache.chunk.Load()
		if c != nil {
			if i := c.used.Add(1) - 1; i < entryChunkLen {
				e := &c.entries[i]
				e.text, e.n = s, n
				return e
			}
		}
		fresh := &entryChunk{}
		fresh.used.Store(1)
		fresh.entries[0] = cacheEntry{text: s, n: n}
		if countCache.chunk.CompareAndSwap(c, fresh) {
			return &fresh.entries[0]
		}
	}
}

// countUncached counts with the package's own o200k_base pre-tokenizer and
// byte-pair merge (o200k.go), which give tiktoken-go's count about twenty
// times faster; if its vocabulary cannot be loaded it asks tiktoken-go.
func countUncached(s string) int {
	if c := counter(); c != nil {
		return c.count(s)
	}
	return countTiktoken(s)
}

// countTiktoken is len(EncodeOrdinary(s)) of tiktoken-go itself.
func countTiktoken(s string) int {
	enc := encoder()
	if enc == nil {
		return estimate(s)
	}
	return len(enc.EncodeOrdinary(s))
}

// Truncate returns the longest prefix of s made of its first n
// o200k_base tokens (never splitting a UTF-8 character) and that prefix's
// token count. When s has at most n tokens it returns s unchanged.
func Truncate(s string, n int) (string, int) {
	if n <= 0 {
		return "", 0
	}
	enc := encoder()
	if enc == nil {
		if estimate(s) <= n {
			return s, estimate(s)
		}
		cut := n * 4
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut], estimate(s[:cut])
	}
	toks := enc.EncodeOrdinary(s)
	if len(toks) <= n {
		return s, len(toks)
	}
	prefix := enc.Decode(toks[:n])
	// The decoded prefix is a byte prefix of s; back off to a character
	// boundary if the last token ended inside a multi-byte character.
	for len(prefix) > 0 && !utf8.ValidString(prefix) {
		prefix = prefix[:len(prefix)-1]
	}
	if !utf8.ValidString(s) {
		// tiktoken-go read each invalid byte of s as U+FFFD, so the decoded
		// prefix holds three bytes where s has one: cut s at the same rune.
		prefix = s[:sourceLen(s, len(prefix))]
	}
	return prefix, countUncached(prefix)
}

// sourceLen returns the length of the prefix of s that reads as the first m
// bytes of s with each invalid byte replaced by U+FFFD; m must fall on a
// character boundary of that text.
func sourceLen(s string, m int) int {
	i, w := 0, 0
	for i < len(s) && w < m {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w += utf8.RuneLen(utf8.RuneError)
		} else {
			w += size
		}
		i += size
	}
	return i
}

// estimate is the usual four-bytes-per-token rule, used only if the embedded
// encoder could not be built.
func estimate(s string) int { return (len(s) + 3) / 4 }
