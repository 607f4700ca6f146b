package main

import (
	"fmt"
	"math"
	"os"

	"kpe-agent/biometric"
)

func loadTemplate(path string) (*biometric.Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := biometric.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// bioMatch: kpectl bio match A B [--json].
func (c *cli) bioMatch(a, b string, asJSON bool) error {
	var ps [2]*biometric.Prepared
	var formats [2]string
	var counts [2]int
	for i, path := range []string{a, b} {
		r, err := loadTemplate(path)
		if err != nil {
			return err
		}
		formats[i], counts[i] = r.Format.String(), len(r.Minutiae())
		if ps[i], err = biometric.Prepare(r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		r.Wipe()
	}
	res := biometric.Compare(ps[0], ps[1])
	if asJSON {
		return c.printJSON(map[string]any{
			"score": res.Score, "threshold": biometric.Threshold, "match": res.Match,
			"paired_minutiae": res.Paired, "overlap_a": res.OverlapA, "overlap_b": res.OverlapB,
			"a": map[string]any{"file": a, "format": formats[0], "minutiae": counts[0]},
			"b": map[string]any{"file": b, "format": formats[1], "minutiae": counts[1]},
		})
	}
	decision := "no match"
	if res.Match {
		decision = "match"
	}
	fmt.Fprintf(c.out, "score %.4f  threshold %.4f  %s\n", res.Score, biometric.Threshold, decision)
	return nil
}

// bioBench: kpectl bio bench DIR [--json].
func (c *cli) bioBench(dir string, asJSON bool) error {
	rep, err := biometric.RunBench(dir)
	if err != nil {
		return err
	}
	if asJSON {
		return c.printJSON(benchJSON(rep))
	}
	fmt.Fprintf(c.out, "%s: %d templates (%.1f minutiae on average), %d genuine and %d impostor pairs\n",
		dir, rep.Templates, rep.AvgMinutiae, rep.Full.Genuine, rep.Full.Impostor)
	for _, row := range []struct {
		name string
		m    biometric.Metrics
		cps  float64
	}{{"full precision", rep.Full, rep.ComparisonsPerS}, {"compact card", rep.Compact, rep.CompactPerS}} {
		fmt.Fprintf(c.out, "%-15s EER %s", row.name, pct(row.m.EER))
		for _, f := range biometric.TargetFMRs {
			fmt.Fprintf(c.out, "  FNMR@FMR=%g %s", f, pct(row.m.FNMRAt[f]))
		}
		fmt.Fprintf(c.out, "  %.0f comparisons/s (one core)\n", row.cps)
	}
	if rep.CompactDropped > 0 {
		fmt.Fprintf(c.out, "compact conversion dropped %d minutiae beyond 25.5 mm\n", rep.CompactDropped)
	}
	if !math.IsNaN(rep.Full.EER) && rep.Full.EER > 0 {
		fmt.Fprintf(c.out, "compact/full EER ratio %.2f\n", rep.Compact.EER/rep.Full.EER)
	}
	return nil
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "n/a (too few impostor pairs)"
	}
	return fmt.Sprintf("%.3f%%", 100*x)
}

func benchJSON(r *biometric.BenchReport) map[string]any {
	m := func(x biometric.Metrics, cps float64) map[string]any {
		fn := map[string]any{}
		for _, f := range biometric.TargetFMRs {
			v := x.FNMRAt[f]
			if math.IsNaN(v) {
				fn[fmt.Sprint(f)] = nil
			} else {
				fn[fmt.Sprint(f)] = v
			}
		}
		return map[string]any{"eer": x.EER, "fnmr_at_fmr": fn, "comparisons_per_second": cps, "genuine": x.Genuine, "impostor": x.Impostor}
	}
	return map[string]any{"templates": r.Templates, "avg_minutiae": r.AvgMinutiae, "full": m(r.Full, r.ComparisonsPerS),
		"compact": m(r.Compact, r.CompactPerS), "compact_dropped": r.CompactDropped}
}
