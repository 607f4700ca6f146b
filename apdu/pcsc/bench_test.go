package pcsc_test

import (
	"context"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/lab/pcsctest"
)

// Benchmarks run through pcscd and a vpcd lab card, and compare our
// transport with a bare scard.Transmit loop sending the same APDUs in the
// same run. The two alternate in blocks, so drift on a shared machine hits
// both equally; the figure that matters is the ratio (ours / bare), reported
// as a metric. Blocks rather than single APDUs, because a card session sends
// APDUs in runs: alternating on every APDU would measure a cold hand-off to
// the card's worker goroutine that real use does not pay.

type benchCard struct {
	raw  *scard.Card
	ours apdu.Card
}

func setupBench(b *testing.B, image string) benchCard {
	b.Helper()
	pcsctest.Require(b)
	lab := pcsctest.Lab(b)
	pcsctest.Insert(b, lab, 0, image)
	return setupBenchConn(b)
}

// setupBenchConn connects to the card in slot 0 twice: through our
// transport and bare.
func setupBenchConn(b *testing.B) benchCard {
	b.Helper()
	tr := pcsc.New(pcsc.Options{})
	b.Cleanup(func() { _ = tr.Close() })
	ours, err := tr.Connect(context.Background(), pcsctest.Slot0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ours.Close() })
	sc, err := scard.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sc.Release() })
	raw, err := sc.Connect(pcsctest.Slot0, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = raw.Disconnect(scard.LeaveCard) })
	return benchCard{raw: raw, ours: ours}
}

func report(b *testing.B, ours, raw time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(ours.Nanoseconds())/n, "ours-ns/op")
	b.ReportMetric(float64(raw.Nanoseconds())/n, "bare-ns/op")
	b.ReportMetric(float64(ours)/float64(raw), "ratio")
}

// BenchmarkRoundTrip: one APDU (SELECT by AID, answered 9000 with FCI).
func BenchmarkRoundTrip(b *testing.B) {
	c := setupBench(b, "generic-fs.json")
	cmd := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(labAID))}, labAID...)
	cmd = append(cmd, 0x00)
	// Callers pass a deadline (the agent always does); without one the
	// transport adds its own CommandTimeout per call.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	var ours, raw time.Duration
	runOurs := func() {
		t0 := time.Now()
		if _, err := c.ours.Transmit(ctx, cmd); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
	}
	runRaw := func() {
		t0 := time.Now()
		if _, err := c.raw.Transmit(cmd); err != nil {
			b.Fatal(err)
		}
		raw += time.Since(t0)
	}
	b.ResetTimer()
	alternate(b.N, 16, runOurs, runRaw)
	report(b, ours, raw)
}

// alternate runs each of a and b n times, in blocks of k, swapping which
// goes first after every pair of blocks.
func alternate(n, k int, a, b func()) {
	for done := 0; done < n; done += k {
		m := min(k, n-done)
		first, second := a, b
		if (done/k)%2 == 1 {
			first, second = b, a
		}
		for range m {
			first()
		}
		for range m {
			second()
		}
	}
}

// recorder keeps the APDUs the client sends, to replay them bare.
type recorder struct {
	apdu.Transmitter
	cmds, rsps [][]byte
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, append([]byte(nil), cmd...))
	rsp, err := r.Transmitter.Transmit(ctx, cmd)
	r.rsps = append(r.rsps, append([]byte(nil), rsp...))
	return rsp, err
}

// BenchmarkRead64KiB: a whole 64 KiB EF with the client's READ BINARY plan
// (limits announced by the card) against the same APDUs sent bare.
func BenchmarkRead64KiB(b *testing.B) {
	for _, image := range []string{"generic-fs.json", "generic-fs-extended.json"} {
		b.Run(image, func(b *testing.B) {
			c := setupBench(b, image)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			cl := apdu.NewClient(c.ours, apdu.Limits{})
			limits, err := cl.ReadLimits(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cl.SelectAID(ctx, labAID); err != nil {
				b.Fatal(err)
			}
			if _, err := cl.SelectFID(ctx, ef64k); err != nil {
				b.Fatal(err)
			}
			rec := &recorder{Transmitter: c.ours}
			if _, err := apdu.NewClient(rec, limits).ReadBinary(ctx, 65536); err != nil {
				b.Fatal(err)
			}
			plan := rec.cmds
			cl = apdu.NewClient(c.ours, limits)
			var ours, raw time.Duration
			runOurs := func() {
				t0 := time.Now()
				if _, err := cl.ReadBinary(ctx, 65536); err != nil {
					b.Fatal(err)
				}
				ours += time.Since(t0)
			}
			runRaw := func() {
				t0 := time.Now()
				for _, cmd := range plan {
					if _, err := c.raw.Transmit(cmd); err != nil {
						b.Fatal(err)
					}
				}
				raw += time.Since(t0)
			}
			b.ResetTimer()
			alternate(b.N, 2, runOurs, runRaw)
			report(b, ours, raw)
			b.ReportMetric(float64(len(plan)), "apdus")
			b.ReportMetric(float64(apdu.PlanReadBinary(65536, limits)), "min-apdus")
		})
	}
}
