package main

import (
	"math"
	"testing"
)

func TestMeanCI95(t *testing.T) {
	for _, tc := range []struct {
		xs         []float64
		mean, half float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 3, 2.776 * math.Sqrt(2.5/5)},           // t with 4 degrees of freedom
		{[]float64{0.5, 0.5}, 0.5, 0},                                     // no spread
		{[]float64{0.49}, 0.49, 0},                                        // one round: no interval
		{alternating(40), 0.5, 1.96 * math.Sqrt(40*0.25/39/40)},           // beyond the table: the normal quantile
		{[]float64{0.4, 0.6, 0.4, 0.6}, 0.5, 3.182 * math.Sqrt(0.04/3/4)}, // 3 degrees of freedom
	} {
		mean, half := meanCI95(tc.xs)
		if math.Abs(mean-tc.mean) > 1e-12 || math.Abs(half-tc.half) > 1e-9 {
			t.Errorf("%v: %v ± %v, want %v ± %v", tc.xs, mean, half, tc.mean, tc.half)
		}
	}
}

// alternating is n values, 0 and 1 by turns.
func alternating(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i % 2)
	}
	return xs
}
