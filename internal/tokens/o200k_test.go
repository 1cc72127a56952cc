package tokens

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// o200kPattern is tiktoken-go v0.1.8's o200k_base pattern, copied verbatim
// (encoding.go, o200k_base) so the scanner's pieces can be compared with
// regexp2's matches, not only its counts with tiktoken-go's.
var o200kPattern = strings.Join([]string{
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
	`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
	`\p{N}{1,3}`,
	` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
	`\s*[\r\n]+`,
	`\s+(?!\S)`,
	`\s+`,
}, "|")

var o200kRegexp = regexp2.MustCompile(o200kPattern, regexp2.None)

// regexpPieces splits s as tiktoken-go does: regexp2 over []rune(s).
func regexpPieces(s string) []string {
	runes := []rune(s)
	var out []string
	m, _ := o200kRegexp.FindRunesMatch(runes)
	for m != nil {
		out = append(out, string(runes[m.Index:m.Index+m.Length]))
		m, _ = o200kRegexp.FindNextMatch(m)
	}
	return out
}

// scannerPieces splits s with the hand-written scanner.
func scannerPieces(c *o200kCounter, s string) []string {
	sc := new(scratch)
	anyBad := c.classify(sc, s)
	var out []string
	for p := 0; p < len(sc.cls); {
		e := c.nextPiece(s, sc.cls, sc.off, p)
		if e <= p {
			panic("empty piece")
		}
		piece := s[sc.off[p]:sc.off[e]]
		if anyBad {
			piece = strings.Clone(sc.repair(piece, sc.cls[p:e], sc.off[p:e+1]))
		}
		out = append(out, piece)
		p = e
	}
	return out
}

func mustCounter(t testing.TB) *o200kCounter {
	t.Helper()
	c := counter()
	if c == nil {
		t.Fatal("the o200k_base counter could not be built from the offline loader")
	}
	return c
}

// checkSame fails t unless the scanner splits s as regexp2 does and the
// counter counts it as tiktoken-go does.
func checkSame(t testing.TB, c *o200kCounter, s string) {
	t.Helper()
	if got, want := c.count(s), countTiktoken(s); got != want {
		t.Fatalf("count(%q) = %d, tiktoken-go %d\nscanner: %q\nregexp2: %q", trim(s), got, want,
			trimList(scannerPieces(c, s)), trimList(regexpPieces(s)))
	}
	if got, want := scannerPieces(c, s), regexpPieces(s); !slices.Equal(got, want) {
		t.Fatalf("pieces of %q:\nscanner: %q\nregexp2: %q", trim(s), trimList(got), trimList(want))
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func trimList(l []string) []string {
	if len(l) > 60 {
		l = l[:60]
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = trim(s)
	}
	return out
}

var trickyTexts = []string{
	"", "a", " ", "\n", "\r", "\r\n", "\t", "\x00", "'", "''", "'s",
	"hello world", "Hello, world!", "<|endoftext|>", "<|endofprompt|>",
	// contractions in every case
	"I'm you're we've he'll she'd it's don't", "I'M YOU'RE WE'VE HE'LL SHE'D IT'S DON'T",
	"John'S Mary'Ll Tom'Re x'Ve y'M z'D q'T", "'S 'll 'LL 'lL 're 'rE 've 'VE 'm 'd 't",
	"abc's'd", "ABC'sX", "ABC'S", "ab'", "ab' s", "ab'x", "ab'r", "ab'l", "ab'le", "ab'lL",
	"x’s", "don’t", "ǅ'S", "Σ'Σ", "ß'S", "ſ's", "'ſ", "K'k",
	// numbers
	"1", "12", "123", "1234", "1234567", "12345678901234567890", "3.14159", "1,000,000",
	"٣٤٥٦", "１２３４", "Ⅻ", "½¾", "x²³", "42nd", "A1B2", "v1.2.3",
	// scripts and marks
	"日本語のテキストです。", "中文字符测试，标点符号！", "한국어 텍스트", "Привет, мир! Как дела?",
	"مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "ภาษาไทย", "Ελληνικά κείμενα",
	"e\u0301", "\u0301", "\u0301\u0301abc", " \u0301", "A\u0301B\u0301C", "ÀÉÎõü", "ǅungla ǈ ǋ",
	"Ⓐⓑ", "ʰʲʷ", "ᴬᴮ", "ⅰⅱⅲ", "x\u200by", "\u200d", "a\u034fb", "\ufeffbom",
	"😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "😀😀😀 ok", "a😀b", "#️⃣", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀋𠀌", "\U000E0041\U000E0042",
	// whitespace
	"   ", "a   ", "a   b", "a \n b", "  \n  x", "\n\n\n", "\r\n\r\n", "a\r\n\r\nb", " \r\n ", "\t\tx",
	"x \t \n", "x\n ", "x \n", "\u00a0x", "x\u00a0\u00a0y", "\u3000\u3000", "\u2028\u2029", "\u0085", "\v\f",
	"line1\nline2\r\nline3\rline4", "trailing spaces   ", "  leading", "a  \n\n  \t b",
	// punctuation
	"!!!", "!!!\n\n", "!!!\r\n", "...///\n", " //\n\n", "a/b/c\n/", "--help", "(x) [y] {z}",
	"$5.00", "100%", "@user #tag", "a.b.c", "«»", "—–-", "•", "\"quoted\"", "`code`", "x!y?z.",
	// invalid UTF-8 and odd bytes
	"\xff", "\xff\xfe", "a\xffb", "\xc3", "\xc3(", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"\xc0\xaf", "caf\xe9", "\x80abc", "'\xff", "ab'\xff", "1\xff2", " \xff\n", "\ufffd", "\ufffd\xff",
	"\x00\x01\x02\x1f\x7f",
	// long runs
	strings.Repeat(" ", 10000), strings.Repeat("a", 10000), strings.Repeat("\n", 1000),
	strings.Repeat(" ", 5000) + "x", strings.Repeat("ab", 3000), strings.Repeat("1", 1000),
	strings.Repeat("!", 2000), strings.Repeat("日", 2000), strings.Repeat("😀", 500),
	strings.Repeat("Ab'S ", 300), strings.Repeat("\xff", 500),
	"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n",
	"SELECT * FROM t WHERE a = 'x''s' AND b <> 3;\r\n",
	"https://example.com/path?q=1&r=two#frag",
}

func TestO200kMatchesTiktokenTricky(t *testing.T) {
	t.Parallel()
	c := mustCounter(t)
	for _, s := range trickyTexts {
		checkSame(t, c, s)
	}
}

// TestO200kMatchesTiktokenTestdata counts every sample prompt file: whole,
// line by line, and each string of the JSON lines.
func TestO200kMatchesTiktokenTestdata(t *testing.T) {
	t.Parallel()
	c := mustCounter(t)
	files, err := filepath.Glob("../../testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../internal/classify/testdata/*.jsonl")
	files = append(files, more...)
	texts := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			if st, serr := os.Stat(name); serr == nil && st.IsDir() {
				continue
			}
			t.Fatal(err)
		}
		checkSame(t, c, string(data))
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var v any
			if json.Unmarshal([]byte(line), &v) != nil {
				checkSame(t, c, line)
				texts++
				continue
			}
			for _, s := range jsonStrings(v, nil) {
				checkSame(t, c, s)
				texts++
			}
		}
	}
	if texts < 1000 {
		t.Fatalf("only %d texts found in %v", texts, files)
	}
}

func jsonStrings(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = jsonStrings(e, out)
		}
	case map[string]any:
		for _, e := range v {
			out = jsonStrings(e, out)
		}
	}
	return out
}

// trickyRunes are the building blocks of the random texts: one or more of
// every class the pattern tells apart.
var trickyRunes = []rune{
	'a', 'z', 'A', 'Z', 's', 'S', 't', 'T', 'r', 'R', 'e', 'E', 'v', 'V', 'm', 'M', 'l', 'L', 'd', 'D',
	'\'', '\'', '\'', '0', '7', ' ', ' ', ' ', '\n', '\r', '\t', '\v', '\f', '/', '!', '.', ',', '-', '_',
	'\x00', '\u00a0', '\u0085', '\u2028', '\u3000', 'é', 'ß', 'ǅ', 'ʰ', 'ª', '日', 'ア', 'ー', 'Ж', 'ж',
	'\u0301', '\u0903', '\u20dd', '٣', '²', 'Ⅻ', '½', '😀', '\U0001F3FD', '\u200d', '\ufe0f', '\ufffd',
	'€', '©', '\u2019', 'ſ', 'K', 'İ', '\U0001D518', '\U00020000', '\U000E0041',
}

func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		switch rng.IntN(20) {
		case 0:
			b.WriteByte(byte(0x80 + rng.IntN(0x80))) // invalid UTF-8
		case 1:
			b.WriteString([]string{"'s", "'S", "'ll", "'LL", "'Re", "'ve", "'m", "'D", "'t", "\r\n", "  ", "123"}[rng.IntN(12)])
		default:
			b.WriteRune(trickyRunes[rng.IntN(len(trickyRunes))])
		}
	}
	return b.String()
}

func TestO200kMatchesTiktokenRandom(t *testing.T) {
	t.Parallel()
	c := mustCounter(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		checkSame(t, c, randomText(rng, 1+rng.IntN(40)))
	}
	for range 50 {
		checkSame(t, c, randomText(rng, 1000))
	}
}

// TestRuneClassesMatchRegexp2 checks, for every rune, that runeClass agrees
// with regexp2 on each character class of the pattern (so the scanner reads
// \p{..}, \s and (?i) as tiktoken-go's regexp engine does).
func TestRuneClassesMatchRegexp2(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("scans every rune")
	}
	var all []rune
	for r := range rune(unicode.MaxRune + 1) {
		if !utf8.ValidRune(r) {
			continue
		}
		all = append(all, r)
	}
	classes := []struct {
		re   string
		want func(r rune) bool
	}{
		{`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+`, func(r rune) bool { return runeClass(r)&clsUpper != 0 }},
		{`[\p{Ll}\p{Lm}\p{Lo}\p{M}]+`, func(r rune) bool { return runeClass(r)&clsLower != 0 }},
		{`[^\r\n\p{L}\p{N}]+`, func(r rune) bool { return runeClass(r)&clsPre != 0 }},
		{`[^\s\p{L}\p{N}]+`, func(r rune) bool { return runeClass(r)&clsPunct != 0 }},
		{`\p{N}+`, func(r rune) bool { return runeClass(r)&clsN != 0 }},
		{`\p{L}+`, func(r rune) bool { return runeClass(r)&clsL != 0 }},
		{`\s+`, func(r rune) bool { return runeClass(r)&clsS != 0 }},
		{`[\r\n]+`, func(r rune) bool { return runeClass(r)&clsNL != 0 }},
		{`[\r\n/]+`, func(r rune) bool { return runeClass(r)&clsNLSl != 0 }},
		{`(?i:')+`, func(r rune) bool { return runeClass(r)&clsApos != 0 }},
	}
	for _, l := range "strevmld" {
		classes = append(classes, struct {
			re   string
			want func(r rune) bool
		}{`(?i:` + string(l) + `)+`, func(r rune) bool { return unicode.ToLower(r) == l }})
	}
	for _, cl := range classes {
		re := regexp2.MustCompile(cl.re, regexp2.None)
		in := make([]bool, len(all))
		m, err := re.FindRunesMatch(all)
		for m != nil && err == nil {
			for i := m.Index; i < m.Index+m.Length; i++ {
				in[i] = true
			}
			m, err = re.FindNextMatch(m)
		}
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for i, r := range all {
			if in[i] != cl.want(r) {
				t.Errorf("%s: rune %U: regexp2 %v, runeClass %v", cl.re, r, in[i], cl.want(r))
				if bad++; bad > 10 {
					break
				}
			}
		}
	}
	// The table is runeClass.
	tab := classTable()
	for r := range rune(classTableSize) {
		if tab[r] != runeClass(r) {
			t.Fatalf("classTable[%U] = %b, runeClass %b", r, tab[r], runeClass(r))
		}
	}
}

// TestMergeHeapMatchesLinear checks the heap merge against tiktoken's
// quadratic one on pieces of every length up to a few hundred bytes.
func TestMergeHeapMatchesLinear(t *testing.T) {
	t.Parallel()
	c := mustCounter(t)
	sc := new(scratch)
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"a", "aa", "ab", " ", "the", "ing", "日本", "😀", "\xff", "1", "'s", "\n", "tion", "x"}
	for n := 2; n < 400; n++ {
		for range 5 {
			var b strings.Builder
			for b.Len() < n {
				if rng.IntN(3) == 0 {
					b.WriteByte(byte(rng.IntN(256)))
				} else {
					b.WriteString(words[rng.IntN(len(words))])
				}
			}
			p := b.String()
			if l, h := c.mergeLinear(sc, p), c.mergeHeap(sc, p); l != h {
				t.Fatalf("merge %q: linear %d, heap %d", p, l, h)
			}
		}
	}
}

func TestCountTokensFallsBackToTiktoken(t *testing.T) {
	t.Parallel()
	// The counter refuses a vocabulary that fails its self-check.
	small := map[string]int{"a": 0, "b": 1}
	if newO200kCounter(small).selfCheck() {
		t.Fatal("self-check passed a two-token vocabulary")
	}
	if counter() == nil || !counter().selfCheck() {
		t.Fatal("self-check failed on the embedded o200k_base vocabulary")
	}
	for _, s := range []string{"hello world", "日本語", "a\xffb"} {
		if got, want := countTiktoken(s), counter().count(s); got != want {
			t.Errorf("countTiktoken(%q) = %d, fast %d", s, got, want)
		}
	}
}

// TestTruncateTokensMatchesTiktoken checks Truncate (tiktoken-go ids,
// fast count of the prefix) against tiktoken-go alone, invalid UTF-8
// included: the result is always a prefix of s.
func TestTruncateTokensMatchesTiktoken(t *testing.T) {
	t.Parallel()
	enc := encoder()
	if enc == nil {
		t.Fatal("no tiktoken-go encoder")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var texts []string
	for _, s := range trickyTexts {
		if len(s) < 1000 { // tiktoken-go is slow on the long runs
			texts = append(texts, s)
		}
	}
	for range 100 {
		texts = append(texts, randomText(rng, 1+rng.IntN(60)))
	}
	for _, s := range texts {
		toks := enc.EncodeOrdinary(s)
		for _, n := range []int{1, 2, 3, len(toks) / 2, len(toks) - 1, len(toks), len(toks) + 1} {
			got, k := Truncate(s, n)
			if !strings.HasPrefix(s, got) {
				t.Fatalf("Truncate(%q, %d) = %q: not a prefix", s, n, got)
			}
			// It is the text of the first n tokens, less a split character.
			want := s
			if n < len(toks) {
				want = enc.Decode(toks[:max(n, 0)])
				for !utf8.ValidString(want) {
					want = want[:len(want)-1]
				}
			}
			if string([]rune(got)) != string([]rune(want)) {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", s, n, got, want)
			}
			if want := len(enc.EncodeOrdinary(got)); k != want {
				t.Fatalf("Truncate(%q, %d) = %q, %d; tiktoken-go counts %d", s, n, got, k, want)
			}
			if n > 0 && k > n {
				t.Fatalf("Truncate(%q, %d) = %q, %d tokens", s, n, got, k)
			}
			if n >= len(toks) && got != s {
				t.Fatalf("Truncate(%q, %d) = %q, want all of it", s, n, got)
			}
		}
	}
}

func FuzzCountTokensMatchesTiktoken(f *testing.F) {
	for _, s := range trickyTexts {
		if len(s) < 1000 {
			f.Add(s)
		}
	}
	c := mustCounter(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSame(t, c, s)
		// The same bytes read as a sequence of tricky runes, so that the
		// fuzzer also explores how the pattern's classes follow each other.
		var b strings.Builder
		for i := range len(s) {
			b.WriteRune(trickyRunes[int(s[i])%len(trickyRunes)])
		}
		checkSame(t, c, b.String())
	})
}

var benchTexts = []struct{ name, s string }{
	{"short", "What is the capital of France?"},
	{"article_complex", "Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance"},
	{"1KB", strings.Repeat("Explain how gradient descent works with momentum, step by step. ", 16)},
	{"10KB", strings.Repeat("Explain how gradient descent works with momentum, step by step. ", 160)},
	{"multilingual", strings.Repeat("Привет, мир! 日本語のテキスト。 مرحبا 😀 naïve café ", 12)},
}

// BenchmarkCountTokensTiktoken measures tiktoken-go itself (what
// countUncached did before the hand-written pre-tokenizer).
func BenchmarkCountTokensTiktoken(b *testing.B) {
	countTiktoken("warm up")
	for _, bc := range benchTexts {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			b.ReportAllocs()
			for b.Loop() {
				countTiktoken(bc.s)
			}
		})
	}
}

// loadRanks reads the embedded vocabulary into exactly the map
// tiktoken-go's offline loader makes of it.
func TestLoadRanksMatchesTheLoader(t *testing.T) {
	got, err := loadRanks(o200kFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe(o200kFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d ranks, the loader has %d", len(got), len(want))
	}
	for k, r := range want {
		if g, ok := got[k]; !ok || g != r {
			t.Fatalf("token %q: rank %d (present %v), the loader says %d", k, g, ok, r)
		}
	}
}
