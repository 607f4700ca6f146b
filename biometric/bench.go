package biometric

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// BenchPair is one row of pairs.csv.
type BenchPair struct {
	A, B    string
	Genuine bool
}

// BenchReport is what `kpectl bio bench` prints.
type BenchReport struct {
	Templates       int
	Full, Compact   Metrics
	ComparisonsPerS float64 // one goroutine (one core), full precision
	CompactPerS     float64
	AvgMinutiae     float64
	CompactDropped  int // minutiae beyond 25.5 mm dropped by the conversion
}

// ReadPairs reads pairs.csv: a header "a,b,genuine" and rows of file stems
// and 1/0 (true/false also accepted).
func ReadPairs(r io.Reader) ([]BenchPair, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("pairs.csv: %w", err)
	}
	if strings.TrimSpace(head[0]) != "a" || strings.TrimSpace(head[1]) != "b" || strings.TrimSpace(head[2]) != "genuine" {
		return nil, errors.New(`pairs.csv: want the header "a,b,genuine"`)
	}
	var out []BenchPair
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("pairs.csv: %w", err)
		}
		var g bool
		switch strings.ToLower(strings.TrimSpace(rec[2])) {
		case "1", "true", "yes":
			g = true
		case "0", "false", "no":
		default:
			return nil, fmt.Errorf("pairs.csv line %d: genuine %q, want 1 or 0", line, rec[2])
		}
		out = append(out, BenchPair{A: strings.TrimSpace(rec[0]), B: strings.TrimSpace(rec[1]), Genuine: g})
	}
}

// RunBench loads DIR/*.iso and DIR/pairs.csv and measures the matcher on
// full-precision and on compact-card quantised templates.
func RunBench(dir string) (*BenchReport, error) {
	f, err := os.Open(filepath.Join(dir, "pairs.csv"))
	if err != nil {
		return nil, err
	}
	pairs, err := ReadPairs(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, errors.New("pairs.csv lists no pairs")
	}
	full := map[string]*Prepared{}
	compact := map[string]*Prepared{}
	rep := &BenchReport{}
	total := 0
	load := func(stem string) error {
		if _, ok := full[stem]; ok {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, stem+".iso"))
		if err != nil {
			return err
		}
		r, err := Parse(b)
		if err != nil {
			return fmt.Errorf("%s.iso: %w", stem, err)
		}
		p, err := Prepare(r)
		if err != nil {
			return fmt.Errorf("%s.iso: %w", stem, err)
		}
		c, dropped, err := ToCompact(r)
		if err != nil {
			return fmt.Errorf("%s.iso: %w", stem, err)
		}
		rep.CompactDropped += dropped
		pc, err := Prepare(c)
		if err != nil {
			return fmt.Errorf("%s.iso (compact): %w", stem, err)
		}
		full[stem], compact[stem] = p, pc
		total += p.Len()
		return nil
	}
	for _, p := range pairs {
		if err := load(p.A); err != nil {
			return nil, err
		}
		if err := load(p.B); err != nil {
			return nil, err
		}
	}
	rep.Templates = len(full)
	rep.AvgMinutiae = float64(total) / float64(len(full))
	run := func(set map[string]*Prepared) (Metrics, float64) {
		var g, im []float64
		runtime.GC()
		t0 := time.Now()
		for _, p := range pairs {
			s := Compare(set[p.A], set[p.B]).Score
			if p.Genuine {
				g = append(g, s)
			} else {
				im = append(im, s)
			}
		}
		el := time.Since(t0)
		return Evaluate(g, im), float64(len(pairs)) / el.Seconds()
	}
	rep.Full, rep.ComparisonsPerS = run(full)
	rep.Compact, rep.CompactPerS = run(compact)
	return rep, nil
}
