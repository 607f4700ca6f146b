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
			pcsctest.WaitCard(b, pcsctest.Slot0, true, 5*time.Second)
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
