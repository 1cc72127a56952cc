package tokens

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestCountTokens(t *testing.T) {
	t.Parallel()
	// o200k_base counts ("hello world" = 2, as with OpenAI's tiktoken).
	tests := map[string]int{
		"":                               0,
		"hello world":                    2,
		"Hello, world!":                  4,
		"What is the capital of France?": 7,
		"tiktoken is great!":             6,
		"<|endoftext|>":                  7, // special-token text counts as ordinary text
	}
	for s, want := range tests {
		if got := Count(s); got != want {
			t.Errorf("Count(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestCountTokensConcurrent(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if n := Count("hello world"); n != 2 {
					t.Errorf("Count = %d", n)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCountTokensCache(t *testing.T) {
	t.Parallel()
	// Many distinct texts (more than the cache holds) keep their own counts,
	// whether or not they collide in the cache.
	for i := range 3 * cacheSlots {
		s := strings.Repeat("word ", i%7+1) + strconv.Itoa(i)
		if got, want := Count(s), countUncached(s); got != want {
			t.Fatalf("Count(%q) = %d, want %d", s, got, want)
		}
	}
	long := strings.Repeat("a b ", cacheMaxLen)
	if got, want := Count(long), countUncached(long); got != want {
		t.Fatalf("long text: %d, want %d", got, want)
	}
}

func TestTruncateTokens(t *testing.T) {
	t.Parallel()
	s := "The quick brown fox jumps over the lazy dog. It barked."
	n := Count(s)
	if got, k := Truncate(s, n); got != s || k != n {
		t.Errorf("Truncate(s, all) = %q, %d", got, k)
	}
	if got, k := Truncate(s, 100); got != s || k != n {
		t.Errorf("Truncate(s, more) = %q, %d", got, k)
	}
	got, k := Truncate(s, 4)
	if got != "The quick brown fox" || k != 4 {
		t.Errorf("Truncate(s, 4) = %q, %d", got, k)
	}
	if got, k := Truncate(s, 0); got != "" || k != 0 {
		t.Errorf("Truncate(s, 0) = %q, %d", got, k)
	}
	// Never splits a multi-byte character.
	u := strings.Repeat("日本語のテキスト", 20)
	for n := 1; n < 30; n++ {
		got, k := Truncate(u, n)
		if !strings.HasPrefix(u, got) || k > n {
			t.Fatalf("Truncate(u, %d) = %q, %d", n, got, k)
		}
	}
}

func BenchmarkCountTokens(b *testing.B) {
	Count("warm up")
	for _, bc := range benchTexts {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			b.ReportAllocs()
			for b.Loop() {
				countUncached(bc.s)
			}
		})
		b.Run(bc.name+"/cached", func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			b.ReportAllocs()
			for b.Loop() {
				Count(bc.s)
			}
		})
	}
}

// Entries handed out of chunks by concurrent misses are never shared: each
// text keeps its own count (run with -race to check the publication too).
func TestCountTokensCacheConcurrentMisses(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				s := strings.Repeat("x", g+1) + " " + strconv.Itoa(i) + strings.Repeat(" word", i%5)
				for range 2 { // a miss, then (mostly) a hit
					if got, want := Count(s), countUncached(s); got != want {
						t.Errorf("Count(%q) = %d, want %d", s, got, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCountTokensMiss counts texts the cache has not seen (a prompt
// the worker counts for the first time): the count plus the cache store.
func BenchmarkCountTokensMiss(b *testing.B) {
	Count("warm up")
	texts := make([]string, 1<<16)
	for i := range texts {
		texts[i] = "What is " + strconv.Itoa(i) + " plus " + strconv.Itoa(i) + "? Answer briefly."
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		Count(texts[i%len(texts)])
		i++
	}
}
