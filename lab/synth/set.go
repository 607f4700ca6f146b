package synth

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// SetOptions describe a benchmark set.
type SetOptions struct {
	Fingers, Impressions int
	Level                Level
	Seed                 uint64
	// ImpostorPairs is how many impostor pairs pairs.csv lists (first
	// impressions of different fingers, all pairs if 0 or more than there are).
	ImpostorPairs int
}

// WriteSet writes <finger>_<n>.iso files and pairs.csv (a,b,genuine with
// file stems) into dir: every genuine pair of impressions of a finger and
// ImpostorPairs impostor pairs chosen deterministically.
func WriteSet(dir string, o SetOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := ParamsFor(o.Level)
	stem := func(f, n int) string { return fmt.Sprintf("f%04d_%d", f, n) }
	for f := 0; f < o.Fingers; f++ {
		fg := NewFinger(o.Seed, f)
		for n := 0; n < o.Impressions; n++ {
			r := fg.Impression(p, o.Seed+uint64(f)*1000003, n, 2)
			b, err := r.Encode()
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, stem(f, n)+".iso"), b, 0o644); err != nil {
				return err
			}
		}
	}
	out, err := os.Create(filepath.Join(dir, "pairs.csv"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	fmt.Fprintln(w, "a,b,genuine")
	for f := 0; f < o.Fingers; f++ {
		for a := 0; a < o.Impressions; a++ {
			for b := a + 1; b < o.Impressions; b++ {
				fmt.Fprintf(w, "%s,%s,1\n", stem(f, a), stem(f, b))
			}
		}
	}
	total := o.Fingers * (o.Fingers - 1) / 2
	rng := rand.New(rand.NewPCG(o.Seed, 77))
	if o.ImpostorPairs <= 0 || o.ImpostorPairs >= total {
		for a := 0; a < o.Fingers; a++ {
			for b := a + 1; b < o.Fingers; b++ {
				fmt.Fprintf(w, "%s,%s,0\n", stem(a, 0), stem(b, 1%max(o.Impressions, 1)))
			}
		}
	} else {
		seen := map[[2]int]bool{}
		for len(seen) < o.ImpostorPairs {
			a, b := rng.IntN(o.Fingers), rng.IntN(o.Fingers)
			if a == b {
				continue
			}
			k := [2]int{min(a, b), max(a, b)}
			if seen[k] {
				continue
			}
			seen[k] = true
			fmt.Fprintf(w, "%s,%s,0\n", stem(a, rng.IntN(o.Impressions)), stem(b, rng.IntN(o.Impressions)))
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
