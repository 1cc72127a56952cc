package router

import "math"

// Features says which features a router computes from a prompt's text. It is
// stored in the router file, so a router scores prompts exactly as it was
// trained.
//
// Every feature comes from the text alone, in one pass, with no tokenizer
// table and no network:
//   - hashed tokens: lowercased words, numbers (as a length class, "a
//     3-digit number"), single punctuation and symbol characters; word pairs
//     when Bigrams is set; each hashed into 2^HashBits buckets and scaled by
//     1/sqrt(tokens) so long prompts do not dominate;
//   - dense signals (standardised with the training data's mean and spread):
//     length in bytes and words, numbers and their largest size, sentences,
//     question marks, money and percent signs, arithmetic operators, code
//     markers (braces, semicolons, backticks), uppercase and digit shares.
type Features struct {
	HashBits int  `json:"hash_bits"` // 8..24
	Bigrams  bool `json:"bigrams"`
}

// DefaultFeatures is what Train uses unless told otherwise.
var DefaultFeatures = Features{HashBits: 18}

// Dense signal indexes.
const (
	dBytes = iota
	dWords
	dNumbers
	dMaxDigits
	dSentences
	dQuestions
	dMoney
	dPercent
	dOperators
	dCode
	dUpper
	dDigitShare
	numDense
)

// denseNames name the dense signals in the router file and in explanations.
var denseNames = [numDense]string{
	"log_bytes", "log_words", "log_numbers", "max_digits", "sentences", "questions",
	"money", "percent", "operators", "code", "upper_share", "digit_share",
}

// byte classes of the tokenizer.
const (
	cOther  uint8 = iota // a symbol: a one-byte token of its own
	cSpace               // separates tokens
	cLetter              // part of a word (bytes >= 0x80 too: non-ASCII words)
	cDigit               // part of a number
)

var byteClass = func() (t [256]uint8) {
	for i := range t {
		switch {
		case i == ' ' || i == '\t' || i == '\n' || i == '\r' || i == '\v' || i == '\f':
			t[i] = cSpace
		case i >= 'a' && i <= 'z', i >= 'A' && i <= 'Z', i == '_', i == '\'', i >= 0x80:
			t[i] = cLetter
		case i >= '0' && i <= '9':
			t[i] = cDigit
		default:
			t[i] = cOther
		}
	}
	return t
}()

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	// Seeds that keep the kinds of token apart in the hash space.
	seedNumber = 0x9e3779b97f4a7c15
	seedBigram = 0xc2b2ae3d27d4eb4f
)

// mix finishes a hash (splitmix64's finaliser), so that bucket = h >> shift
// uses well-spread high bits.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ (h >> 31)
}

// extract reads text once and returns the raw dense signals and the number
// of hashed tokens. Each token's bucket is either looked up in w, and the
// weights summed into sum (scoring), or, when w is nil, appended to buckets
// (training).
func (f Features) extract(text string, w []float64, buckets *[]uint32) (dense [numDense]float64, tokens int, sum float64) {
	shift := uint(64 - f.HashBits)
	var (
		words, numbers, maxDigits, sentences, questions int
		money, percent, operators, code, upper, digits  int
		prev                                            uint64 // previous token's hash, 0 at the start
	)
	add := func(b uint32) {
		tokens++
		if w != nil {
			sum += w[b]
		} else {
			*buckets = append(*buckets, b)
		}
	}
	emit := func(h uint64) {
		h = mix(h)
		add(uint32(h >> shift))
		if f.Bigrams && prev != 0 {
			add(uint32(mix(prev*31^h^seedBigram) >> shift))
		}
		prev = h
	}
	inWord := false
	for i := 0; i < len(text); {
		c := text[i]
		cls := byteClass[c]
		if cls == cSpace {
			inWord = false
			i++
			continue
		}
		if !inWord {
			words++
			inWord = true
		}
		switch cls {
		case cLetter:
			h := uint64(fnvOffset)
			for ; i < len(text); i++ {
				c := text[i]
				if byteClass[c] != cLetter {
					break
				}
				if c >= 'A' && c <= 'Z' {
					upper++
					c += 'a' - 'A'
				}
				h = (h ^ uint64(c)) * fnvPrime
			}
			emit(h)
		case cDigit:
			n := 0
			for ; i < len(text); i++ {
				c := text[i]
				if byteClass[c] == cDigit {
					n++
					continue
				}
				// 1,000 and 3.5 are one number.
				if (c == ',' || c == '.') && i+1 < len(text) && byteClass[text[i+1]] == cDigit {
					continue
				}
				break
			}
			digits += n
			numbers++
			maxDigits = max(maxDigits, n)
			emit(seedNumber + uint64(min(n, 8)))
		default:
			switch c {
			case '.', '!':
				sentences++
			case '?':
				sentences++
				questions++
			case '$':
				money++
			case '%':
				percent++
			case '+', '-', '*', '/', '=', '^', '<', '>':
				operators++
			case '{', '}', ';', '`', '[', ']':
				code++
			}
			emit((uint64(fnvOffset) ^ uint64(c)) * fnvPrime)
			i++
		}
	}
	n := float64(len(text))
	dense = [numDense]float64{
		dBytes:      math.Log1p(n),
		dWords:      math.Log1p(float64(words)),
		dNumbers:    math.Log1p(float64(numbers)),
		dMaxDigits:  float64(maxDigits),
		dSentences:  math.Log1p(float64(sentences)),
		dQuestions:  float64(questions),
		dMoney:      math.Log1p(float64(money)),
		dPercent:    math.Log1p(float64(percent)),
		dOperators:  math.Log1p(float64(operators)),
		dCode:       math.Log1p(float64(code)),
		dUpper:      float64(upper) / max(n, 1),
		dDigitShare: float64(digits) / max(n, 1),
	}
	return dense, tokens, sum
}
