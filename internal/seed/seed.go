// Package seed is promptcascade's one seed hash: how a prompt, a model or
// a provider batch item becomes the reproducible 64-bit seed of its
// simulated (or seedable) call, and the small generator the simulator draws
// from it. Seeds are stable across releases: the same input gives the same
// seed, so a run on the sim provider can be replayed.
package seed

// FNV-1a 64 parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// golden is 2^64/phi, the splitmix64 increment.
const golden = 0x9e3779b97f4a7c15

// String is the seed of a name (FNV-1a 64 of s): a model id, a provider
// batch item's custom id.
func String(s string) uint64 { return fnv1a(fnvOffset, s) }

// Of is the seed of base and parts (a batch and a prompt id, say): base is
// mixed, then each part is hashed in, separated, so that ("ab", "c") and
// ("a", "bc") differ.
func Of(base uint64, parts ...string) uint64 {
	h := Mix(base ^ 0x6a09e667f3bcc908)
	for i, p := range parts {
		if i > 0 {
			h ^= 0xff
		}
		h = fnv1a(h, p)
	}
	return h
}

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// Mix is splitmix64's step: it spreads the bits of z over the whole word.
func Mix(z uint64) uint64 {
	z += golden
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Unit maps a seed to [0, 1).
func Unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// RNG is splitmix64: tiny, allocation-free, and good enough for simulation.
// The zero value is a valid generator (seed 0).
type RNG struct{ s uint64 }

// New returns a generator seeded with s.
func New(s uint64) RNG { return RNG{s: s} }

// Uint64 returns the next value.
func (r *RNG) Uint64() uint64 {
	z := Mix(r.s)
	r.s += golden
	return z
}

// Float returns a uniform value in [0, 1).
func (r *RNG) Float() float64 { return Unit(r.Uint64()) }

// Intn returns a value in [0, n); n must be positive.
func (r *RNG) Intn(n int) int { return int(r.Uint64() % uint64(n)) }
