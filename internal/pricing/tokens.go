package pricing

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	tiktoken "github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding is the tiktoken encoding CountTokens uses: that of GPT-4o and
// later OpenAI models, and a fair estimate for every other provider.
const Encoding = "o200k_base"

var tokenizer struct {
	once sync.Once
	enc  *tiktoken.Tiktoken
}

// encoder returns the o200k_base encoder, built once. The offline loader is
// set before the first GetEncoding call, so the BPE ranks come from files
// embedded in the binary and nothing is downloaded. It returns nil only if the
// embedded files are unusable, which the package tests rule out.
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

// CountTokens returns the number of o200k_base tokens in s. Special-token
// text such as "<|endoftext|>" is counted as ordinary text. The encoder is
// initialised on first use (tens of milliseconds); CountTokens is safe for
// concurrent use.
//
// Tokenizing costs about 0.2 µs per byte, so CountTokens remembers recent
// texts (up to 16 KiB each, in a fixed table of 4096 slots): counting the same
// prompt again (the worker, then the simulated provider, then a retry) costs
// one hash.
func CountTokens(s string) int {
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
	slot.Store(&cacheEntry{text: s, n: n})
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
}{seed: maphash.MakeSeed()}

func countUncached(s string) int {
	enc := encoder()
	if enc == nil {
		return estimate(s)
	}
	return len(enc.EncodeOrdinary(s))
}

// TruncateTokens returns the longest prefix of s made of its first n
// o200k_base tokens (never splitting a UTF-8 character) and that prefix's
// token count. When s has at most n tokens it returns s unchanged.
func TruncateTokens(s string, n int) (string, int) {
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
	return prefix, countUncached(prefix)
}

// estimate is the usual four-bytes-per-token rule, used only if the embedded
// encoder could not be built.
func estimate(s string) int { return (len(s) + 3) / 4 }
