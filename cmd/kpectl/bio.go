package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"kpe-agent/biometric"
	"kpe-agent/lab/synth"
)

// bio: kpectl bio match A B | bio bench DIR | bio gen -out DIR.
func (c *cli) bio(_ context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("kpectl bio: want match, bench or gen")}
	}
	switch args[0] {
	case "match":
		return c.bioMatch(args[1:])
	case "bench":
		return c.bioBench(args[1:])
	case "gen":
		return c.bioGen(args[1:])
	}
	return usageError{fmt.Errorf("kpectl bio: unknown subcommand %q", args[0])}
}

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

func (c *cli) bioMatch(args []string) error {
	fs := c.flags("bio match")
	asJSON := fs.Bool("json", false, "print JSON with the details")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{errors.New("kpectl bio match: want two template files (ISO/IEC 19794-2 or ANSI INCITS 378)")}
	}
	var ps [2]*biometric.Prepared
	var formats [2]string
	var counts [2]int
	for i, path := range fs.Args() {
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
	if *asJSON {
		return c.printJSON(map[string]any{
			"score": res.Score, "threshold": biometric.Threshold, "match": res.Match,
			"paired_minutiae": res.Paired, "overlap_a": res.OverlapA, "overlap_b": res.OverlapB,
			"a": map[string]any{"file": fs.Arg(0), "format": formats[0], "minutiae": counts[0]},
			"b": map[string]any{"file": fs.Arg(1), "format": formats[1], "minutiae": counts[1]},
		})
	}
	decision := "no match"
	if res.Match {
		decision = "match"
	}
	fmt.Fprintf(c.out, "score %.4f  threshold %.4f  %s\n", res.Score, biometric.Threshold, decision)
	return nil
}

func (c *cli) bioBench(args []string) error {
	fs := c.flags("bio bench")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("kpectl bio bench: want a directory with *.iso files and pairs.csv (a,b,genuine)")}
	}
	rep, err := biometric.RunBench(fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(benchJSON(rep))
	}
	fmt.Fprintf(c.out, "%s: %d templates (%.1f minutiae on average), %d genuine and %d impostor pairs\n",
		fs.Arg(0), rep.Templates, rep.AvgMinutiae, rep.Full.Genuine, rep.Full.Impostor)
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

func (c *cli) bioGen(args []string) error {
	fs := c.flags("bio gen")
	out := fs.String("out", "", "output directory")
	level := fs.String("level", "hard", "easy or hard")
	fingers := fs.Int("fingers", 300, "synthetic fingers")
	impressions := fs.Int("impressions", 4, "impressions per finger")
	impostors := fs.Int("impostors", 50000, "impostor pairs in pairs.csv (0: all)")
	seed := fs.Uint64("seed", 1, "seed (the same seed gives the same set)")
	if err := parse(fs, args); err != nil {
		return err
	}
	lv := map[string]synth.Level{"easy": synth.Easy, "hard": synth.Hard}[*level]
	if *out == "" || lv == 0 || *fingers < 2 || *impressions < 2 {
		return usageError{errors.New("kpectl bio gen: want -out DIR, -level easy|hard, at least 2 fingers and 2 impressions")}
	}
	if err := synth.WriteSet(*out, synth.SetOptions{Fingers: *fingers, Impressions: *impressions, Level: lv, Seed: *seed, ImpostorPairs: *impostors}); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s: %d fingers x %d impressions (%s), pairs.csv\n", *out, *fingers, *impressions, *level)
	return nil
}
