package seed

import (
	"hash/fnv"
	"testing"
)

// String is FNV-1a 64, the hash the simulator's model salts and the
// provider batch items' seeds have always used: seeds stay what they were.
func TestStringIsFNV1a(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "sim/small", "batch-item-17", "ünïcode"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := String(s), h.Sum64(); got != want {
			t.Errorf("String(%q) = %x, want FNV-1a %x", s, got, want)
		}
	}
}

func TestOfSeparatesParts(t *testing.T) {
	t.Parallel()
	if Of(1, "ab", "c") == Of(1, "a", "bc") {
		t.Error(`("ab", "c") and ("a", "bc") share a seed`)
	}
	if Of(1, "b", "1") == Of(2, "b", "1") {
		t.Error("the base does not change the seed")
	}
	if a, b := Of(7, "b", "1"), Of(7, "b", "1"); a != b {
		t.Error("not reproducible")
	}
}

// RNG is the splitmix64 reference sequence.
func TestRNGIsSplitmix64(t *testing.T) {
	t.Parallel()
	// splitmix64 seeded with 0 (reference values).
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	r := New(0)
	for i, w := range want {
		if got := r.Uint64(); got != w {
			t.Fatalf("value %d = %x, want %x", i, got, w)
		}
	}
	r = New(42)
	for range 1000 {
		if f := r.Float(); f < 0 || f >= 1 {
			t.Fatalf("Float() = %v", f)
		}
		if n := r.Intn(7); n < 0 || n >= 7 {
			t.Fatalf("Intn(7) = %d", n)
		}
	}
}
