package uploader_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/record"
	"kpe-agent/sync/uploader"
	"kpe-agent/sync/wire"
)

// BenchmarkCommit: one record's Append (commit and fsync) against a bare
// bbolt Update of the same bytes, same file system, same run. Reports
// p50/p99 of each and the ratio.
func BenchmarkCommit(b *testing.B) {
	dir := b.TempDir()
	r := newRig(b, false)
	// records sealed in advance: the commit is measured, not the signing
	recs := sealMany(b, r, 1000)
	enc, _ := recs[0].Encode()

	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{MaxRecords: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer ob.Close()
	db, err := bolt.Open(filepath.Join(dir, "bare.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err })

	var tOut, tBare []time.Duration
	b.ResetTimer()
	for i := range recs { // a fixed sample, whatever b.N is
		// alternate, so both see the same disk weather
		t0 := time.Now()
		if _, err := ob.Append(recs[i]); err != nil {
			b.Fatal(err)
		}
		tOut = append(tOut, time.Since(t0))
		t0 = time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("b"))
			seq, _ := bk.NextSequence()
			return bk.Put([]byte(strconv.FormatUint(seq, 10)), enc)
		})
		if err != nil {
			b.Fatal(err)
		}
		tBare = append(tBare, time.Since(t0))
	}
	b.StopTimer()
	p := func(d []time.Duration, q float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	if len(tOut) >= 20 {
		b.ReportMetric(float64(p(tOut, .5).Microseconds()), "p50-µs")
		b.ReportMetric(float64(p(tOut, .99).Microseconds()), "p99-µs")
		b.ReportMetric(float64(p(tBare, .5).Microseconds()), "bare-p50-µs")
		b.ReportMetric(float64(p(tBare, .99).Microseconds()), "bare-p99-µs")
		b.ReportMetric(float64(p(tOut, .5))/float64(p(tBare, .5)), "p50-ratio")
		fmt.Fprintf(os.Stderr, "commit latency: outbox p50 %v p99 %v | bare bbolt Update p50 %v p99 %v | ratio p50 %.2f\n",
			p(tOut, .5), p(tOut, .99), p(tBare, .5), p(tBare, .99), float64(p(tOut, .5))/float64(p(tBare, .5)))
	}
}

// BenchmarkBacklogDrain: KPE_BENCH_BACKLOG (default 100,000) queued
// records to the back office on PostgreSQL over mutual TLS, end to end
// with signature verification. Reports records/s.
func BenchmarkBacklogDrain(b *testing.B) {
	total := envInt(b, "KPE_BENCH_BACKLOG", 100_000)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRig(b, true)
		r.start("")
		// Import takes records beyond the outbox's count limit
		if _, err := r.ob.Import(sealMany(b, r, total)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		up := r.uploader(func(c *uploader.Config) { c.MaxRecords, c.MaxBytes = 500, 1<<20 })
		rep, err := up.Drain(context.Background())
		el := time.Since(t0)
		b.StopTimer()
		if err != nil || rep.Accepted != total {
			b.Fatalf("drain: %v, %d accepted of %d", err, rep.Accepted, total)
		}
		b.ReportMetric(float64(total)/el.Seconds(), "records/s")
		fmt.Fprintf(os.Stderr, "backlog drain: %d records to PostgreSQL in %v = %.0f records/s\n", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	}
}

// BenchmarkIngest: the back office alone (verification and PostgreSQL),
// batches of 500 handed to Service.Ingest. Reports records/s.
func BenchmarkIngest(b *testing.B) {
	total := envInt(b, "KPE_BENCH_INGEST", 50_000)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRig(b, true)
		svc, err := backoffice.New(r.store, backoffice.Config{CA: r.samCA.Pool()})
		if err != nil {
			b.Fatal(err)
		}
		encs := sealMany(b, r, total)
		raw := make([][]byte, len(encs))
		for j, e := range encs {
			raw[j], _ = e.Encode()
		}
		b.StartTimer()
		t0 := time.Now()
		for j := 0; j < len(raw); j += 500 {
			res, err := svc.Ingest(context.Background(), &wire.Batch{Certificates: [][]byte{r.sam.Cert}, Records: raw[j:min(j+500, len(raw))]}, backoffice.Identity{Terminal: terminal})
			if err != nil {
				b.Fatal(err)
			}
			if res.Results[0].Status != wire.Accepted {
				b.Fatalf("%+v", res.Results[0])
			}
		}
		el := time.Since(t0)
		b.StopTimer()
		b.ReportMetric(float64(total)/el.Seconds(), "records/s")
		fmt.Fprintf(os.Stderr, "back-office ingest: %d records verified and stored in PostgreSQL in %v = %.0f records/s\n", total, el.Round(time.Millisecond), float64(total)/el.Seconds())
	}
}

func sealMany(b *testing.B, r *rig, n int) []*record.Record {
	out := make([]*record.Record, 0, n)
	var prev [32]byte
	for i := 0; i < n; i++ {
		rec := sampleRec(prev)
		if err := record.Seal(context.Background(), rec, r.sam); err != nil {
			b.Fatal(err)
		}
		prev, _ = rec.Hash()
		out = append(out, rec)
	}
	return out
}

// envInt reads a positive count from the environment, or def.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
