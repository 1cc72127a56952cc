package tokens

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file counts o200k_base tokens without tiktoken-go's regexp2-based
// pre-tokenizer. The result must equal len(EncodeOrdinary(s)) of tiktoken-go
// v0.1.8 for every string, so it follows that library step by step:
//
//  1. The text is read as runes the way Go's []rune conversion does it (and
//     so regexp2 and tiktoken-go): each byte of an invalid UTF-8 sequence is
//     one U+FFFD, and a piece holding one is tokenized as U+FFFD's bytes.
//  2. A hand-written scanner splits the runes into the pieces tiktoken-go's
//     o200k_base pattern (encoding.go, o200k_base) matches, with regexp2's
//     backtracking, leftmost-alternative semantics:
//
//     [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//     |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//     |\p{N}{1,3}
//     | ?[^\s\p{L}\p{N}]+[\r\n/]*
//     |\s*[\r\n]+
//     |\s+(?!\S)
//     |\s+
//
//     regexp2 reads \p{X} as unicode.Is(unicode.Categories[X], r), \s as
//     unicode.IsSpace, and (?i:...) as comparing unicode.ToLower(r) with the
//     lower-case pattern character; the class table below is built from the
//     same definitions.
//  3. A piece that is itself a token counts 1; any other piece is merged
//     with tiktoken's byte-pair algorithm (repeatedly merge the adjacent pair
//     with the lowest rank, leftmost first) and counts its final parts.
//
// The ranks come from the file tiktoken-go's offline loader embeds, read as
// that loader reads it (loadRanks).

// o200kFile is the name tiktoken-go asks its loader for; the offline loader
// only uses its base name to pick a file embedded in the binary.
const o200kFile = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"

// Rune classes, one bit per character class of the pattern.
const (
	clsL     uint16 = 1 << iota // \p{L}
	clsN                        // \p{N}
	clsS                        // \s
	clsUpper                    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	clsLower                    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	clsPre                      // [^\r\n\p{L}\p{N}]
	clsPunct                    // [^\s\p{L}\p{N}]
	clsNL                       // [\r\n]
	clsNLSl                     // [\r\n/]
	clsSpace                    // ' ' (the literal " ?")
	clsApos                     // matches "'" case-insensitively
	clsBad                      // an invalid UTF-8 byte, read as U+FFFD
)

// runeClass is the reference definition of a rune's classes, written the
// way regexp2 tests them. The tables below are built from it.
func runeClass(r rune) uint16 {
	var c uint16
	isL := unicode.Is(unicode.L, r)
	isN := unicode.Is(unicode.N, r)
	isS := unicode.IsSpace(r)
	isM := unicode.Is(unicode.M, r)
	isLm, isLo := unicode.Is(unicode.Lm, r), unicode.Is(unicode.Lo, r)
	if isL {
		c |= clsL
	}
	if isN {
		c |= clsN
	}
	if isS {
		c |= clsS
	}
	if unicode.Is(unicode.Lu, r) || unicode.Is(unicode.Lt, r) || isLm || isLo || isM {
		c |= clsUpper
	}
	if unicode.Is(unicode.Ll, r) || isLm || isLo || isM {
		c |= clsLower
	}
	if r != '\r' && r != '\n' && !isL && !isN {
		c |= clsPre
	}
	if !isS && !isL && !isN {
		c |= clsPunct
	}
	if r == '\r' || r == '\n' {
		c |= clsNL | clsNLSl
	}
	if r == '/' {
		c |= clsNLSl
	}
	if r == ' ' {
		c |= clsSpace
	}
	if unicode.ToLower(r) == '\'' {
		c |= clsApos
	}
	return c
}

// classTableSize covers the Basic and Supplementary Multilingual Planes
// (emoji included); rarer runes are classified on the fly.
const classTableSize = 0x20000

// classTable caches runeClass (about 10 ms to build, once).
var classTable = sync.OnceValue(func() *[classTableSize]uint16 {
	t := new([classTableSize]uint16)
	for r := range rune(classTableSize) {
		t[r] = runeClass(r)
	}
	return t
})

// o200kCounter counts o200k_base tokens; it is safe for concurrent use.
type o200kCounter struct {
	ranks map[string]int
	pairs *[1 << 16]int32 // rank of each two-byte token, noRank if none
	class *[classTableSize]uint16
	bad   uint16 // class of an invalid byte: U+FFFD's, plus clsBad
}

var fastCounter struct {
	once sync.Once
	c    *o200kCounter
}

// counter returns the o200k_base counter, built once, or nil if the embedded
// ranks could not be loaded or fail the self-check; callers then fall back to
// tiktoken-go.
func counter() *o200kCounter {
	fastCounter.once.Do(func() {
		ranks, err := loadRanks(o200kFile)
		if err != nil {
			return
		}
		c := newO200kCounter(ranks)
		if c.selfCheck() {
			fastCounter.c = c
		}
	})
	return fastCounter.c
}

func newO200kCounter(ranks map[string]int) *o200kCounter {
	class := classTable()
	pairs := new([1 << 16]int32)
	for i := range pairs {
		pairs[i] = noRank
	}
	for k, r := range ranks {
		if len(k) == 2 {
			pairs[int(k[0])<<8|int(k[1])] = int32(r)
		}
	}
	return &o200kCounter{ranks: ranks, pairs: pairs, class: class, bad: class[utf8.RuneError] | clsBad}
}

// selfCheck guards against an unexpected vocabulary file: like o200k_base,
// it must have a token for every byte, and a few known texts must count as
// tiktoken counts them.
func (c *o200kCounter) selfCheck() bool {
	if len(c.ranks) < 199_000 {
		return false
	}
	for b := range 256 {
		if _, ok := c.ranks[string([]byte{byte(b)})]; !ok {
			return false
		}
	}
	for s, n := range map[string]int{
		"hello world":                    2,
		"What is the capital of France?": 7,
		"<|endoftext|>":                  7,
		"tiktoken is great!":             6,
	} {
		if c.count(s) != n {
			return false
		}
	}
	return true
}

// scratch holds the buffers of one count; pooled so counting allocates
// nothing in the steady state.
type scratch struct {
	cls   []uint16 // class of each rune
	off   []int    // byte offset of each rune, plus len(s)
	parts []bpePart
	next  []int32
	prev  []int32
	rank  []int32
	heap  []uint64
	buf   []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooled bounds the buffers kept in the pool (in elements), so one huge
// text does not pin its buffers forever.
const maxPooled = 1 << 16

func (sc *scratch) release() {
	if cap(sc.cls) > maxPooled || cap(sc.off) > maxPooled || cap(sc.next) > maxPooled ||
		cap(sc.heap) > maxPooled || cap(sc.buf) > maxPooled {
		return
	}
	scratchPool.Put(sc)
}

// classify fills sc.cls and sc.off for s and reports whether s holds an
// invalid UTF-8 byte.
func (c *o200kCounter) classify(sc *scratch, s string) (anyBad bool) {
	cls, off := sc.cls[:0], sc.off[:0]
	for i := 0; i < len(s); {
		b := s[i]
		off = append(off, i)
		if b < utf8.RuneSelf {
			cls = append(cls, c.class[b])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			cls = append(cls, c.bad)
			anyBad = true
		case r < classTableSize:
			cls = append(cls, c.class[r])
		default:
			cls = append(cls, runeClass(r))
		}
		i += size
	}
	off = append(off, len(s))
	sc.cls, sc.off = cls, off
	return anyBad
}

// count returns len(EncodeOrdinary(s)) of tiktoken-go's o200k_base.
func (c *o200kCounter) count(s string) int {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	anyBad := c.classify(sc, s)
	cls, off := sc.cls, sc.off
	n := 0
	for p := 0; p < len(cls); {
		e := c.nextPiece(s, cls, off, p)
		piece := s[off[p]:off[e]]
		if anyBad {
			piece = sc.repair(piece, cls[p:e], off[p:e+1])
		}
		n += c.pieceTokens(sc, piece)
		p = e
	}
	return n
}

// repair returns piece with each invalid byte replaced by U+FFFD, as
// tiktoken-go's string([]rune(...)) does.
func (sc *scratch) repair(piece string, cls []uint16, off []int) string {
	bad := false
	for _, k := range cls {
		if k&clsBad != 0 {
			bad = true
			break
		}
	}
	if !bad {
		return piece
	}
	b := sc.buf[:0]
	base := off[0]
	for i, k := range cls {
		if k&clsBad != 0 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, piece[off[i]-base:off[i+1]-base]...)
		}
	}
	sc.buf = b
	return string(b)
}

// nextPiece returns the end (a rune index) of the piece the o200k_base
// pattern matches at rune index p. Every rune starts some alternative, so
// the match always starts at p and is never empty.
func (c *o200kCounter) nextPiece(s string, cls []uint16, off []int, p int) int {
	n := len(cls)
	c0 := cls[p]

	// 1: [^\r\n\p{L}\p{N}]? [Upper]* [Lower]+ contraction?
	if c0&clsPre != 0 && p+1 < n {
		if e := upperLower(cls, p+1); e >= 0 {
			return contraction(s, cls, off, e)
		}
	}
	if e := upperLower(cls, p); e >= 0 {
		return contraction(s, cls, off, e)
	}

	// 2: [^\r\n\p{L}\p{N}]? [Upper]+ [Lower]* contraction? — no
	// backtracking needed: once [Upper]+ matched, the rest cannot fail.
	start := -1
	if c0&clsPre != 0 && p+1 < n && cls[p+1]&clsUpper != 0 {
		start = p + 1
	} else if c0&clsUpper != 0 {
		start = p
	}
	if start >= 0 {
		e := start + 1
		for e < n && cls[e]&clsUpper != 0 {
			e++
		}
		for e < n && cls[e]&clsLower != 0 {
			e++
		}
		return contraction(s, cls, off, e)
	}

	// 3: \p{N}{1,3}
	if c0&clsN != 0 {
		e := p + 1
		for e < n && e < p+3 && cls[e]&clsN != 0 {
			e++
		}
		return e
	}

	// 4: " "? [^\s\p{L}\p{N}]+ [\r\n/]*
	start = -1
	if c0&clsSpace != 0 && p+1 < n && cls[p+1]&clsPunct != 0 {
		start = p + 1
	} else if c0&clsPunct != 0 {
		start = p
	}
	if start >= 0 {
		e := start + 1
		for e < n && cls[e]&clsPunct != 0 {
			e++
		}
		for e < n && cls[e]&clsNLSl != 0 {
			e++
		}
		return e
	}

	// Every rune left is \s (a rune that is not \s, \p{L} or \p{N} took
	// the fourth alternative).
	e, lastNL := p, -1
	for e < n && cls[e]&clsS != 0 {
		if cls[e]&clsNL != 0 {
			lastNL = e
		}
		e++
	}
	// 5: \s*[\r\n]+ — \s* gives runes back until [\r\n]+ can match: the
	// match ends after the run's last \r or \n.
	if lastNL >= 0 {
		return lastNL + 1
	}
	// 6: \s+(?!\S) — the whole run at the end of the text, else all but
	// its last rune, which is whitespace and so not \S.
	if e == n {
		return e
	}
	if e-p >= 2 {
		return e - 1
	}
	// 7: \s+
	return e
}

// upperLower matches [Upper]*[Lower]+ at rune index q with backtracking and
// returns the end, or -1.
func upperLower(cls []uint16, q int) int {
	n := len(cls)
	r := q
	for r < n && cls[r]&clsUpper != 0 {
		r++
	}
	if r < n && cls[r]&clsLower != 0 {
		e := r + 1
		for e < n && cls[e]&clsLower != 0 {
			e++
		}
		return e
	}
	// [Upper]* gives runes back until [Lower]+ can start; the rune after
	// that one is Upper-only or ends the run, so [Lower]+ takes one rune.
	for j := r - 1; j >= q; j-- {
		if cls[j]&clsLower != 0 {
			return j + 1
		}
	}
	return -1
}

// contraction extends a match ending at rune index e by an optional
// (?i:'s|'t|'re|'ve|'m|'ll|'d).
func contraction(s string, cls []uint16, off []int, e int) int {
	n := len(cls)
	if e+1 >= n || cls[e]&clsApos == 0 {
		return e
	}
	switch lowerAt(s, cls, off, e+1) {
	case 's', 't', 'm', 'd':
		return e + 2
	case 'r', 'v':
		if e+2 < n && lowerAt(s, cls, off, e+2) == 'e' {
			return e + 3
		}
	case 'l':
		if e+2 < n && lowerAt(s, cls, off, e+2) == 'l' {
			return e + 3
		}
	}
	return e
}

// lowerAt returns unicode.ToLower of rune i, as regexp2 compares it under
// (?i).
func lowerAt(s string, cls []uint16, off []int, i int) rune {
	if cls[i]&clsBad != 0 {
		return utf8.RuneError
	}
	r, _ := utf8.DecodeRuneInString(s[off[i]:])
	return unicode.ToLower(r)
}

// pieceTokens returns the number of tokens of one pre-tokenized piece.
func (c *o200kCounter) pieceTokens(sc *scratch, piece string) int {
	if len(piece) <= 1 {
		return len(piece)
	}
	if _, ok := c.ranks[piece]; ok {
		return 1
	}
	if len(piece) <= linearMergeMax {
		return c.mergeLinear(sc, piece)
	}
	return c.mergeHeap(sc, piece)
}

// linearMergeMax is the longest piece merged with the quadratic scan (fast
// for short pieces); longer ones use a heap.
const linearMergeMax = 128

const noRank = int32(1<<31 - 1)

type bpePart struct {
	start int32
	rank  int32
}

func (c *o200kCounter) rankOf(b string) int32 {
	if r, ok := c.ranks[b]; ok {
		return int32(r)
	}
	return noRank
}

// mergeLinear is tiktoken's bytePairMerge, counting the parts left.
func (c *o200kCounter) mergeLinear(sc *scratch, piece string) int {
	parts := sc.parts[:0]
	for i := range len(piece) + 1 {
		parts = append(parts, bpePart{start: int32(i), rank: noRank})
	}
	sc.parts = parts
	for i := 0; i+2 < len(parts); i++ {
		parts[i].rank = c.pairs[int(piece[i])<<8|int(piece[i+1])]
	}
	// rank of parts[i] merged with the next skip+1 parts.
	get := func(i, skip int) int32 {
		if i+skip+2 < len(parts) {
			return c.rankOf(piece[parts[i].start:parts[i+skip+2].start])
		}
		return noRank
	}
	for len(parts) > 1 {
		minRank, minIdx := noRank, -1
		for i := 0; i < len(parts)-1; i++ {
			if parts[i].rank < minRank {
				minRank, minIdx = parts[i].rank, i
			}
		}
		if minIdx < 0 {
			break
		}
		i := minIdx
		parts[i].rank = get(i, 1)
		if i > 0 {
			parts[i-1].rank = get(i-1, 1)
		}
		parts = append(parts[:i+1], parts[i+2:]...)
	}
	return len(parts) - 1
}

// mergeHeap performs the same merges as mergeLinear (lowest rank first, the
// leftmost of equal ranks first) with a linked list of parts and a min-heap
// of (rank, start) keys, so long pieces cost O(n log n).
func (c *o200kCounter) mergeHeap(sc *scratch, piece string) int {
	n := int32(len(piece))
	next, prev, rank := sc.next[:0], sc.prev[:0], sc.rank[:0]
	for i := range n + 1 {
		next = append(next, i+1)
		prev = append(prev, i-1)
		rank = append(rank, noRank)
	}
	sc.next, sc.prev, sc.rank = next, prev, rank
	h := sc.heap[:0]
	// pairRank is the rank of part i merged with the part after it.
	pairRank := func(i int32) int32 {
		j := next[i]
		if j >= n {
			return noRank
		}
		return c.rankOf(piece[i:next[j]])
	}
	for i := range n - 1 {
		rank[i] = c.pairs[int(piece[i])<<8|int(piece[i+1])]
		if rank[i] != noRank {
			h = heapPush(h, rank[i], i)
		}
	}
	parts := int(n)
	for len(h) > 0 {
		var r, i int32
		h, r, i = heapPop(h)
		if rank[i] != r { // stale entry: part i changed or was merged away
			continue
		}
		j := next[i]
		next[i] = next[j]
		if next[j] <= n {
			prev[next[j]] = i
		}
		rank[j] = -1 // merged away
		parts--
		rank[i] = pairRank(i)
		if rank[i] != noRank {
			h = heapPush(h, rank[i], i)
		}
		if p := prev[i]; p >= 0 {
			rank[p] = pairRank(p)
			if rank[p] != noRank {
				h = heapPush(h, rank[p], p)
			}
		}
	}
	sc.heap = h
	return parts
}

func heapPush(h []uint64, rank, pos int32) []uint64 {
	h = append(h, uint64(rank)<<32|uint64(uint32(pos)))
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if h[parent] <= h[i] {
			break
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
	return h
}

func heapPop(h []uint64) ([]uint64, int32, int32) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return h, int32(top >> 32), int32(uint32(top))
}
