package pcsc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"math/big"
	"sync"
	"testing"
	"time"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/pcsctest"
)

// detRand is a resettable deterministic byte source, so that a card session
// (challenges, authentication keys, hence every SM APDU) repeats exactly
// and can be replayed bare.
type detRand struct {
	mu  sync.Mutex
	ctr uint64
	buf []byte
}

func (d *detRand) Reset() { d.mu.Lock(); d.ctr, d.buf = 0, nil; d.mu.Unlock() }

func (d *detRand) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n := 0; n < len(p); {
		if len(d.buf) == 0 {
			h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, d.ctr))
			d.ctr++
			d.buf = h[:]
		}
		c := copy(p[n:], d.buf)
		d.buf, n = d.buf[c:], n+c
	}
	return len(p), nil
}

// BenchmarkKPERead: a whole KPE read (authentication, every group, EF.SOD;
// with and without the 12 KB photo) against a bare scard replay of the same
// APDUs in the same run.
func BenchmarkKPERead(b *testing.B) {
	master := bytes.Repeat([]byte{0x4B}, 16)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	profile := kpeapp.Profile{
		Info:       kpe.CardInfo{Serial: [8]byte{0, 0, 0, 0, 0, 0, 0, 7}, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256},
		Identity:   kpe.Identity{NIP: "196608011988031001", Name: "Bench Card", BirthDate: "19660801", Gender: "L"},
		Employment: kpe.Employment{Status: "PNS", GolonganRuang: "IV/c"},
		Family:     kpe.Family{Members: []kpe.Member{{Spouse: true, Name: "Spouse"}, {Name: "Child 1"}, {Name: "Child 2"}}},
		Benefits:   kpe.Benefits{BPJSNumber: "0001234567890"},
		Photo:      bytes.Repeat([]byte{0xFF, 0xD8, 0x42}, 4000),
	}
	cfg, err := kpeapp.Personalise(profile, master, key, cert)
	if err != nil {
		b.Fatal(err)
	}
	cardRand, samRand := &detRand{}, &detRand{}
	cfg.Rand = cardRand
	applet, err := kpeapp.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, photo := range []bool{true, false} {
		name := "identity-only"
		if photo {
			name = "full-with-photo"
		}
		b.Run(name, func(b *testing.B) {
			pcsctest.Require(b)
			lab := pcsctest.Lab(b)
			if err := lab.Insert(0, applet); err != nil {
				b.Fatal(err)
			}
			pcsctest.WaitCard(b, pcsctest.Slot0, true, 15*time.Second)
			c := setupBenchConn(b)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			sam := kpe.SoftwareSAM{Master: master, Rand: samRand}
			opts := kpe.ReadOptions{Photo: photo, Roots: roots}
			read := func(t apdu.Transmitter) {
				cardRand.Reset()
				samRand.Reset()
				got, err := kpe.Read(ctx, t, sam, opts)
				if err != nil || !got.Verification.DataAuthentic.OK {
					b.Fatalf("read: %v %+v", err, got.Verification)
				}
			}
			rec := &recorder{Transmitter: c.ours}
			read(rec)
			var ours, raw time.Duration
			runOurs := func() {
				t0 := time.Now()
				read(c.ours)
				ours += time.Since(t0)
			}
			runRaw := func() {
				cardRand.Reset()
				t0 := time.Now()
				for i, cmd := range rec.cmds {
					rsp, err := c.raw.Transmit(cmd)
					if err != nil {
						b.Fatal(err)
					}
					// The replay must make the card do the same work.
					if !bytes.Equal(rsp, rec.rsps[i]) {
						b.Fatalf("bare replay diverged at APDU %d: % X, recorded % X", i, rsp, rec.rsps[i])
					}
				}
				raw += time.Since(t0)
			}
			b.ResetTimer()
			alternate(b.N, 2, runOurs, runRaw)
			report(b, ours, raw)
			b.ReportMetric(float64(len(rec.cmds)), "apdus")
		})
	}
}

// BenchmarkKPERenewal: writing a renewal (update-key authentication,
// BEGIN UPDATE, DG2 and EF.SOD, COMMIT UPDATE; docs/card-profiles.md
// §2.7) through pcscd, against a whole read of the same card without the
// photo in the same run: ratio = write / read. The target
// (docs/renewal.md, "Speed") is a ratio of at most 2: a holder waits for
// the write about as long as for the read that came before it.
func BenchmarkKPERenewal(b *testing.B) {
	master, updateMaster := bytes.Repeat([]byte{0x4B}, 16), bytes.Repeat([]byte{0x55}, 16)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	serial := [8]byte{0, 0, 0, 0, 0, 0, 0, 8}
	profile := kpeapp.Profile{
		Info:       kpe.CardInfo{Serial: serial, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256},
		Identity:   kpe.Identity{NIP: "196608011988031001", Name: "Bench Card", BirthDate: "19660801", Gender: "L"},
		Employment: kpe.Employment{Status: "PNS", GolonganRuang: "IV/c"},
		Family:     kpe.Family{Members: []kpe.Member{{Spouse: true, Name: "Spouse"}, {Name: "Child 1"}, {Name: "Child 2"}}},
		Benefits:   kpe.Benefits{BPJSNumber: "0001234567890"},
	}
	cfg, err := kpeapp.PersonaliseWithUpdate(profile, master, updateMaster, key, cert)
	if err != nil {
		b.Fatal(err)
	}
	// two versions of DG2 and their EF.SODs: the card goes back and forth
	groups := map[int][]byte{}
	for dg := kpe.DGIdentity; dg <= kpe.DGBIT; dg++ {
		if fid, ok := kpe.GroupFID(dg); ok && cfg.Files[fid] != nil {
			groups[dg] = cfg.Files[fid]
		}
	}
	var versions [2]kpe.Update
	for i, gol := range []string{"IV/d", "IV/c"} {
		e := profile.Employment
		e.GolonganRuang = gol
		g := map[int][]byte{}
		for dg, c := range groups {
			g[dg] = c
		}
		g[kpe.DGEmployment] = e.Encode()
		newSOD, err := sod.Sign(g, key, cert)
		if err != nil {
			b.Fatal(err)
		}
		versions[i] = kpe.Update{ID: [16]byte{byte(i + 1)}, Groups: map[int][]byte{kpe.DGEmployment: g[kpe.DGEmployment]}, SOD: newSOD}
	}
	applet, err := kpeapp.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	pcsctest.Require(b)
	lab := pcsctest.Lab(b)
	if err := lab.Insert(0, applet); err != nil {
		b.Fatal(err)
	}
	pcsctest.WaitCard(b, pcsctest.Slot0, true, 15*time.Second)
	c := setupBenchConn(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	sam := kpe.SoftwareSAM{Master: master, UpdateMaster: updateMaster}
	var seq uint32
	var write, read time.Duration
	rec := &recorder{Transmitter: c.ours}
	runWrite := func() {
		seq++
		u := versions[seq%2]
		u.Sequence = seq
		t := apdu.Transmitter(c.ours)
		if seq == 1 {
			t = rec
		}
		t0 := time.Now()
		if err := kpe.WriteUpdate(ctx, t, sam, serial, u, kpe.WriteOptions{}); err != nil {
			b.Fatalf("write %d: %v", seq, err)
		}
		write += time.Since(t0)
	}
	runRead := func() {
		t0 := time.Now()
		got, err := kpe.Read(ctx, c.ours, sam, kpe.ReadOptions{Roots: roots})
		if err != nil || !got.Verification.DataAuthentic.OK || got.Update.Sequence != seq {
			b.Fatalf("read after write %d: %v %+v %+v", seq, err, got.Verification, got.Update)
		}
		read += time.Since(t0)
	}
	b.ResetTimer()
	alternate(b.N, 2, runWrite, runRead)
	b.ReportMetric(float64(write.Nanoseconds())/float64(b.N), "write-ns/op")
	b.ReportMetric(float64(read.Nanoseconds())/float64(b.N), "read-ns/op")
	b.ReportMetric(float64(write)/float64(read), "ratio")
	b.ReportMetric(float64(len(rec.cmds)), "apdus")
}
