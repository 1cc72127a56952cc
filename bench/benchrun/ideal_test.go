package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestIdealOccupancy(t *testing.T) {
	for _, c := range []struct {
		d     []float64
		slots int
		want  float64
	}{
		{[]float64{1, 1, 1, 1}, 2, 1},    // two full rounds
		{[]float64{1, 1, 1}, 2, 0.75},    // the last round half empty
		{[]float64{3, 1, 1, 1}, 2, 1},    // one slot takes the three short ones
		{[]float64{1, 1, 1, 3}, 2, 0.75}, // the long one last: 6 / (2 × 4)
		{[]float64{2}, 4, 0.25},
		{nil, 4, 0},
	} {
		if got := idealOccupancy(c.d, c.slots); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("idealOccupancy(%v, %d) = %v, want %v", c.d, c.slots, got, c.want)
		}
	}
}

// The heap gives what a scan of every slot for the first to free gives.
func TestIdealOccupancyMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		slots := 1 + rng.IntN(40)
		d := make([]float64, rng.IntN(500))
		for i := range d {
			d[i] = math.Exp(rng.NormFloat64() * 0.5)
		}
		free := make([]float64, slots)
		sum, end := 0.0, 0.0
		for _, x := range d {
			j := 0
			for k := range free {
				if free[k] < free[j] {
					j = k
				}
			}
			free[j] += x
			sum, end = sum+x, max(end, free[j])
		}
		want := 0.0
		if len(d) > 0 {
			want = sum / (float64(slots) * end)
		}
		if got := idealOccupancy(d, slots); math.Abs(got-want) > 1e-9 {
			t.Fatalf("%d slots, %d durations: %v, scan gives %v", slots, len(d), got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want float64
	}{{[]float64{0.53, 0.45, 0.54}, 0.53}, {[]float64{2, 1}, 1.5}, {[]float64{7}, 7}, {nil, 0}} {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}
