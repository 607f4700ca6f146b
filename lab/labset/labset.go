// Package labset personalises a set of lab cards from a spec: the issuer
// PKI (BKN and Dukcapil document signers under their CAs, a back-office CA
// for SAM terminal certificates), a SAM holding freshly generated master
// keys, and KPE, KPE Tambahan, KTP-el and deliberately faulty cards. It
// writes card images, the trust lists and a manifest; `kpe-cardsim
// personalise` is its command line, and the sample set in
// testdata/cards/lab is its output (docs/card-lab.md).
package labset

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/ktpel"
	"kpe-agent/biometric"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/synth"
)

// Spec describes a class set.
type Spec struct {
	Comment any        `json:"comment,omitempty"`
	SAM     SAMSpec    `json:"sam"`
	Cards   []CardSpec `json:"cards"`
}

// SAMSpec describes the set's SAM (and, with Blocked set, extra SAMs).
type SAMSpec struct {
	Serial         string `json:"serial"`
	ActivationCode string `json:"activation_code"`
	KTPSecret1     string `json:"ktp_secret1"`
	KTPSecret2     string `json:"ktp_secret2"`
}

// Card kinds and variants.
const (
	KindKPE         = "kpe"
	KindKPETambahan = "kpe-tambahan"
	KindKTPel       = "ktpel"
	KindSAM         = "sam"
	KindUnknown     = "unknown"

	VariantClone           = "clone"            // right data, key not from the master
	VariantTampered        = "tampered"         // a group altered after signing
	VariantExpiredIssuer   = "expired-issuer"   // document signer certificate expired
	VariantUntrustedIssuer = "untrusted-issuer" // signed under a CA not in the trust list
	VariantBlocked         = "blocked"          // SAM: activation tries exhausted
)

// CardSpec is one card of the set.
type CardSpec struct {
	File    string `json:"file"` // image file name without .json
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Variant string `json:"variant,omitempty"`
	// Expect is the verdict the card must end in (see docs/card-lab.md);
	// the lab's tests check it through pcscd.
	Expect string `json:"expect"`
	Serial string `json:"serial,omitempty"` // KPE: 8 bytes hex; SAM: 8 bytes hex
	UID    string `json:"uid,omitempty"`    // KTP-el
	// Tamper names the data group a "tampered" card alters (default 2).
	Tamper     int             `json:"tamper,omitempty"`
	PhotoSeed  int             `json:"photo_seed,omitempty"`
	Identity   *kpe.Identity   `json:"identity,omitempty"`
	Employment *kpe.Employment `json:"employment,omitempty"`
	Family     *kpe.Family     `json:"family,omitempty"`
	Benefits   *kpe.Benefits   `json:"benefits,omitempty"`
	Biodata    *ktpel.Biodata  `json:"biodata,omitempty"`
	Fingers    []int           `json:"fingers,omitempty"`   // KTP-el: the two finger codes
	AID        string          `json:"aid,omitempty"`       // unknown card: its application
	BioTries   int             `json:"bio_tries,omitempty"` // KPE: fingerprint retry counter (negative: blocked)
	// Purse gives a KPE a purse (docs/card-profiles.md §2.8) with keys
	// derived from the set's purse masters (a clone's from others).
	Purse *PurseSpec `json:"purse,omitempty"`
}

// PurseSpec is a card's purse at personalisation: its starting balance
// and its maximum balance (0: kpe.DefaultMaxBalance).
type PurseSpec struct {
	Balance    uint32 `json:"balance"`
	MaxBalance uint32 `json:"max_balance,omitempty"`
}

// Manifest is what Generate writes as lab.json: where the trust lists and
// the images are, the activation secrets of the set's SAM, and each card's
// expected verdict.
type Manifest struct {
	Comment string            `json:"comment"`
	Trust   map[string]string `json:"trust"` // bkn, dukcapil, backoffice → PEM file
	// RenewalCA is the lab's BKN renewal root (docs/renewal.md): its
	// certificate is in the bkn trust list too, and its key is kept, so
	// the lab's back office can certify its document-signer key (in a
	// SoftHSM2 token) with it. Lab only: a real issuer's keys are never
	// in a file.
	RenewalCA *KeyFiles `json:"renewal_ca,omitempty"`
	// PurseKeys is the lab's purse masters file (purse.LoadKeys format),
	// the same masters as the set's SAM images hold, so that the lab's
	// back office can check the cards' purse proofs. Lab only: a real
	// issuer keeps them in an HSM.
	PurseKeys   string         `json:"purse_keys,omitempty"`
	SAM         SAMSpec        `json:"sam"`
	Cards       []ManifestCard `json:"cards"`
	GeneratedAt time.Time      `json:"generated_at"`
}

// KeyFiles names a certificate and its private key (PEM), relative to
// the manifest.
type KeyFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// ManifestCard is one card in the manifest.
type ManifestCard struct {
	Name    string `json:"name"`
	Image   string `json:"image"` // relative to the manifest
	Kind    string `json:"kind"`
	Variant string `json:"variant,omitempty"`
	Expect  string `json:"expect"`
}

// LoadSpec reads a spec file strictly.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := cardsim.DecodeImage(b, &s); err != nil {
		return nil, fmt.Errorf("labset: spec %s: %w", path, err)
	}
	return &s, nil
}

type ca struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newCA(name string, from, to time.Time, parent *ca, isCA bool, serial int64) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name, Organization: []string{"kpe-agent card lab (not a real issuer)"}},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &ca{key, cert}, err
}

type pki struct {
	bknCA, bknDS, dukCA, dukDS, boCA, expiredDS, rogueCA, rogueDS, renewalCA *ca
}

func newPKI(now time.Time) (*pki, error) {
	var p pki
	var err error
	y := func(n int) time.Time { return now.AddDate(n, 0, 0) }
	steps := []struct {
		dst      **ca
		name     string
		from, to time.Time
		parent   **ca
		isCA     bool
	}{
		{&p.bknCA, "Lab BKN Root CA", y(-2), y(25), nil, true},
		{&p.bknDS, "Lab BKN Document Signer", y(-1), y(15), &p.bknCA, false},
		{&p.expiredDS, "Lab BKN Document Signer (expired)", y(-6), y(-1), &p.bknCA, false},
		{&p.dukCA, "Lab Dukcapil Root CA", y(-2), y(25), nil, true},
		{&p.dukDS, "Lab Dukcapil Document Signer", y(-1), y(15), &p.dukCA, false},
		{&p.boCA, "Lab Back Office CA", y(-2), y(25), nil, true},
		{&p.rogueCA, "Untrusted Issuer CA", y(-2), y(25), nil, true},
		{&p.rogueDS, "Untrusted Document Signer", y(-1), y(15), &p.rogueCA, false},
		{&p.renewalCA, "Lab BKN Renewal Root CA", y(-2), y(25), nil, true},
	}
	for i, s := range steps {
		var parent *ca
		if s.parent != nil {
			parent = *s.parent
		}
		if *s.dst, err = newCA(s.name, s.from, s.to, parent, s.isCA, int64(i+1)); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// Generate personalises the spec's cards into outDir: cards/*.json (and
// photo files), trust/*.pem and lab.json. Master keys and the
// institution's pseudonym key are generated here and exist afterwards
// only inside the SAM image.
func Generate(spec *Spec, outDir string, now time.Time) (*Manifest, error) {
	p, err := newPKI(now)
	if err != nil {
		return nil, err
	}
	// The institution's pseudonym key goes into every SAM of the set, as
	// an institution's SAMs share it (one KTP-el holder, one subject).
	kpeMaster, ktpMaster, pseudonymKey := randBytes(16), randBytes(24), randBytes(samapp.MinPseudonymKey)
	// The card update master (renewal, docs/card-profiles.md §2.7): every
	// KPE gets update keys derived from it, the lab SAMs hold it.
	updateMaster := randBytes(16)
	// The purse masters (§2.8): every KPE with a purse gets debit and
	// credit keys derived from them, the lab SAMs hold them.
	debitMaster, creditMaster := randBytes(16), randBytes(16)
	for _, d := range []string{"cards", "trust"} {
		if err := os.MkdirAll(filepath.Join(outDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	m := &Manifest{Comment: "generated by kpe-cardsim personalise; lab keys only, never use for real cards",
		Trust: map[string]string{"bkn": "trust/bkn-ca.pem", "dukcapil": "trust/dukcapil-ca.pem", "backoffice": "trust/backoffice-ca.pem"},
		SAM:   spec.SAM, GeneratedAt: now.UTC().Truncate(time.Second)}
	for name, c := range map[string]*ca{"bkn": p.bknCA, "dukcapil": p.dukCA, "backoffice": p.boCA} {
		if err := writePEM(filepath.Join(outDir, m.Trust[name]), c.cert.Raw); err != nil {
			return nil, err
		}
	}
	if m.RenewalCA, err = writeRenewalCA(outDir, m.Trust["bkn"], p.renewalCA); err != nil {
		return nil, err
	}
	m.PurseKeys = "trust/purse-keys.json"
	if err := WritePurseKeys(filepath.Join(outDir, m.PurseKeys), debitMaster, creditMaster); err != nil {
		return nil, err
	}
	for _, cs := range spec.Cards {
		if cs.File == "" || !filepath.IsLocal(cs.File) {
			return nil, fmt.Errorf("labset: card %q: bad file name", cs.File)
		}
		img, extra, err := personalise(cs, spec.SAM, p, masters{kpe: kpeMaster, update: updateMaster, ktp: ktpMaster, pseudonym: pseudonymKey, debit: debitMaster, credit: creditMaster}, now)
		if err != nil {
			return nil, fmt.Errorf("labset: card %s: %w", cs.File, err)
		}
		for name, b := range extra {
			if err := os.WriteFile(filepath.Join(outDir, "cards", name), b, 0o644); err != nil {
				return nil, err
			}
		}
		rel := filepath.Join("cards", cs.File+".json")
		if err := os.WriteFile(filepath.Join(outDir, rel), append(img, '\n'), 0o644); err != nil {
			return nil, err
		}
		m.Cards = append(m.Cards, ManifestCard{Name: cs.Name, Image: rel, Kind: cs.Kind, Variant: cs.Variant, Expect: cs.Expect})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(outDir, "lab.json"), append(b, '\n'), 0o644)
}

// masters are the set's secret keys, which exist only in the SAM images.
type masters struct{ kpe, update, ktp, pseudonym, debit, credit []byte }

func personalise(cs CardSpec, ss SAMSpec, p *pki, m masters, now time.Time) ([]byte, map[string][]byte, error) {
	kpeMaster, ktpMaster, pseudonymKey := m.kpe, m.ktp, m.pseudonym
	updateMaster := m.update
	signer := map[string]*ca{KindKPE: p.bknDS, KindKPETambahan: p.bknDS, KindKTPel: p.dukDS}[cs.Kind]
	switch cs.Variant {
	case VariantExpiredIssuer:
		signer = p.expiredDS
	case VariantUntrustedIssuer:
		signer = p.rogueDS
	}
	keyMaster := kpeMaster
	if cs.Kind == KindKTPel {
		keyMaster = ktpMaster
	}
	debitMaster, creditMaster := m.debit, m.credit
	if cs.Variant == VariantClone {
		keyMaster = randBytes(len(keyMaster)) // the cloner does not have the master
		updateMaster = randBytes(len(updateMaster))
		debitMaster, creditMaster = randBytes(16), randBytes(16)
	}
	switch cs.Kind {
	case KindKPE, KindKPETambahan:
		serial, err := hex.DecodeString(cs.Serial)
		if err != nil || len(serial) != 8 || cs.Identity == nil {
			return nil, nil, errors.New("a KPE needs an 8-byte hex serial and an identity")
		}
		bio, bitGroup, err := enrol(serial, cs)
		if err != nil {
			return nil, nil, err
		}
		prof := kpeapp.Profile{
			Info:     kpe.CardInfo{Serial: [8]byte(serial), Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256, IssuerID: "BKN"},
			Identity: *cs.Identity, Photo: Photo(cs.PhotoSeed, 240, 320), BIT: bitGroup,
		}
		if cs.Kind == KindKPETambahan {
			prof.Info.Type = kpe.CardKPETambahan
		}
		if cs.Employment != nil {
			prof.Employment = *cs.Employment
		}
		if cs.Family != nil {
			prof.Family = *cs.Family
		}
		if cs.Benefits != nil {
			prof.Benefits = *cs.Benefits
		}
		cfg, err := kpeapp.PersonaliseWithUpdate(prof, keyMaster, updateMaster, signer.key, signer.cert)
		if err != nil {
			return nil, nil, err
		}
		cfg.Name, cfg.ATR, cfg.Bio = cs.Name, kpeapp.ATRKPE, bio
		if cs.Purse != nil {
			if cfg.Purse, err = PurseConfig([8]byte(serial), debitMaster, creditMaster, *cs.Purse); err != nil {
				return nil, nil, err
			}
		}
		if cs.Variant == VariantTampered {
			if err := tamperKPE(cfg.Files, cs.Tamper); err != nil {
				return nil, nil, err
			}
		}
		photo := cs.File + "-photo.jpg"
		img, err := kpeapp.Image("kpe", cfg, describe(cs), map[uint16]string{kpe.FIDPhoto: photo})
		return img, map[string][]byte{photo: cfg.Files[kpe.FIDPhoto]}, err
	case KindKTPel:
		uid, err := hex.DecodeString(cs.UID)
		if err != nil || cs.Biodata == nil || len(cs.Fingers) != 2 {
			return nil, nil, errors.New("a KTP-el needs a hex UID, biodata and two finger codes")
		}
		prof := kpeapp.KTPProfile{UID: uid, Header: ktpel.Header{ChipSerial: uid[len(uid)-4:], Version: 1},
			Biodata: *cs.Biodata, Photo: Photo(cs.PhotoSeed, 240, 320), Signature: Photo(cs.PhotoSeed+1000, 160, 60)}
		// Two fingers of the holder, enrolled from synthetic fingers whose
		// ids derive from the UID (the lab sensor presents the first).
		base := 50000 + int(uid[len(uid)-2])<<8 | int(uid[len(uid)-1])
		for i, f := range cs.Fingers {
			rec := synth.NewFinger(FingerSeed, base+i).Impression(synth.ParamsFor(synth.Easy), FingerSeed, 0, f)
			tmpl, err := rec.Encode()
			if err != nil {
				return nil, nil, err
			}
			prof.Fingerprints[i] = ktpel.Fingerprint{Finger: f, Template: tmpl}
		}
		cfg, err := kpeapp.PersonaliseKTPel(prof, keyMaster, signer.key, signer.cert)
		if err != nil {
			return nil, nil, err
		}
		cfg.Name = cs.Name
		cfg.HolderFinger = &kpeapp.FingerRef{Seed: FingerSeed, ID: base, Code: cs.Fingers[0]}
		if cs.Variant == VariantTampered {
			cfg.Files[ktpel.FIDBiodata] = bytes.Replace(cfg.Files[ktpel.FIDBiodata], []byte(cs.Biodata.Name), []byte(reverse(cs.Biodata.Name)), 1)
		}
		photo, sig := cs.File+"-photo.jpg", cs.File+"-signature.jpg"
		img, err := kpeapp.Image("ktpel", cfg, describe(cs), map[uint16]string{ktpel.FIDPhoto: photo, ktpel.FIDSignature: sig})
		return img, map[string][]byte{photo: cfg.Files[ktpel.FIDPhoto], sig: cfg.Files[ktpel.FIDSignature]}, err
	case KindSAM:
		serial, err := hex.DecodeString(cs.Serial)
		if err != nil || len(serial) != 8 {
			return nil, nil, errors.New("a SAM needs an 8-byte hex serial")
		}
		term, err := newCA(fmt.Sprintf("Terminal SAM %X", serial), now.AddDate(0, -1, 0), now.AddDate(10, 0, 0), p.boCA, false, int64(100+serial[7]))
		if err != nil {
			return nil, nil, err
		}
		cfg := samapp.Config{Name: cs.Name, Serial: [8]byte(serial), ActivationCode: []byte(ss.ActivationCode), MaxTries: 3,
			Key: term.key, CertDER: term.cert.Raw, KPEMaster: kpeMaster, UpdateMaster: m.update, KTPMaster: ktpMaster, DebitMaster: m.debit, CreditMaster: m.credit,
			KTPSecret1: []byte(ss.KTPSecret1), KTPSecret2: []byte(ss.KTPSecret2), PseudonymKey: pseudonymKey}
		if len(m.credit) > 0 {
			// the roots of the bkn trust list: the terminal's issuer roots,
			// which the back office's top-up authorisations chain to
			cfg.TopUpRoots = []*x509.Certificate{p.bknCA.cert, p.renewalCA.cert}
		}
		if cs.Variant == VariantBlocked {
			cfg.Initial = &samapp.State{Tries: 0}
		}
		img, err := samapp.Image(cfg, describe(cs))
		return img, nil, err
	case KindUnknown:
		aid := cs.AID
		if aid == "" {
			aid = "D3 60 00 00 01 01"
		}
		img := map[string]any{"type": "filesystem", "name": cs.Name, "comment": describe(cs),
			"files": []map[string]any{
				{"path": "3F00/4F00", "type": "df", "aid": aid},
				{"path": "3F00/4F00/4F01", "type": "ef", "pattern": map[string]int{"size": 512, "seed": cs.PhotoSeed}},
			}}
		b, err := json.MarshalIndent(img, "", "  ")
		return b, nil, err
	}
	return nil, nil, fmt.Errorf("unknown kind %q", cs.Kind)
}

// FingerSeed is the synthetic-finger seed of the lab's card holders; a
// card's finger id is its serial's last two bytes.
const FingerSeed = 2026

// enrol makes the holder's enrolment: a synthetic finger's first
// impression as the on-card reference, and the BIT (EF 0107) that says
// what the card compares. BioTries in the spec sets the retry counter.
func enrol(serial []byte, cs CardSpec) (*kpeapp.BioConfig, []byte, error) {
	id := int(serial[6])<<8 | int(serial[7])
	code := 7 // left index
	rec := synth.NewFinger(FingerSeed, id).Impression(synth.ParamsFor(synth.Easy), FingerSeed, 0, code)
	c, _, err := biometric.ToCompact(rec)
	if err != nil {
		return nil, nil, err
	}
	bit := biometric.BIT{Reference: kpe.DefaultFingerReference, Type: 0x08, Subtype: 0x0A, FormatOwner: 0x0101, FormatType: 0x0006,
		MinMinutiae: kpe.DefaultMinMinutiae, MaxMinutiae: kpe.DefaultMaxMinutiae, Order: biometric.OrderAscending | biometric.OrderXY}
	biometric.SortMinutiae(c.Views[0].Minutiae, bit.Order)
	ref, err := biometric.EncodeCompact(c.Minutiae())
	if err != nil {
		return nil, nil, err
	}
	return &kpeapp.BioConfig{Reference: ref, Ref: bit.Reference, MinN: bit.MinMinutiae, MaxN: bit.MaxMinutiae, MaxTries: kpe.DefaultFingerTries, Tries: cs.BioTries,
		Finger: kpeapp.FingerRef{Seed: FingerSeed, ID: id, Code: code}}, biometric.EncodeBITGroup([]biometric.BIT{bit}), nil
}

func describe(cs CardSpec) string {
	s := fmt.Sprintf("lab card (%s", cs.Kind)
	if cs.Variant != "" {
		s += ", " + cs.Variant
	}
	return s + "); expected verdict: " + cs.Expect
}

// tamperKPE alters a data group after signing: the issuer's hash no longer
// matches. The change keeps the group well-formed.
func tamperKPE(files map[uint16][]byte, dg int) error {
	if dg == 0 {
		dg = kpe.DGEmployment
	}
	fid, ok := kpe.GroupFID(dg)
	if !ok || files[fid] == nil {
		return fmt.Errorf("tamper: the card has no data group %d", dg)
	}
	b := files[fid]
	// Change the last byte of the last text value: "IV/a" becomes "IV/e".
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] >= 'a' && b[i] <= 'z' || b[i] >= 'A' && b[i] <= 'Z' {
			b[i] ^= 0x04
			return nil
		}
	}
	return fmt.Errorf("tamper: data group %d holds no letter to alter", dg)
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// writeRenewalCA writes the renewal root's certificate and key into
// trust/ and adds the certificate to the BKN trust list at bknList.
func writeRenewalCA(outDir, bknList string, c *ca) (*KeyFiles, error) {
	kf := &KeyFiles{Cert: "trust/bkn-renewal-ca.pem", Key: "trust/bkn-renewal-ca-key.pem"}
	if err := labpki.WriteCert(filepath.Join(outDir, kf.Cert), c.cert); err != nil {
		return nil, err
	}
	if err := labpki.WriteKey(filepath.Join(outDir, kf.Key), c.key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(outDir, bknList), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return kf, err
}

// RenewalIssuer loads the lab's BKN renewal root with its key (lab only).
func (m *Manifest) RenewalIssuer(dir string) (*labpki.CA, error) {
	if m.RenewalCA == nil {
		return nil, errors.New("labset: the set has no renewal CA")
	}
	return labpki.LoadCA(filepath.Join(dir, m.RenewalCA.Cert), filepath.Join(dir, m.RenewalCA.Key))
}

// TopUpIssuer is a lab issuer of top-up authorisations the set's SAM
// trusts: a fresh document signer (named name) under the set's renewal
// root, one of the BKN roots in the SAM's purse_topup_roots.
func (m *Manifest) TopUpIssuer(dir, name string) (*samapp.TopUpIssuer, error) {
	ca, err := m.RenewalIssuer(dir)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := ca.DocumentSigner(&key.PublicKey, pkix.Name{CommonName: name})
	if err != nil {
		return nil, err
	}
	return &samapp.TopUpIssuer{Root: ca.Cert, Key: key, Cert: cert}, nil
}

func writePEM(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// Photo returns a synthetic JPEG (not a person): smooth gradients with
// seeded texture, so that its size is realistic for a card photo.
func Photo(seed, w, h int) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	noise := cardsim.PatternBytes(w*h, seed)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cx, cy := x-w/2, y-h/3
			d := cx*cx + cy*cy
			v := 200 - d/(w/2+1) + int(noise[y*w+x]%48)
			r, g, b := clamp(v), clamp(v-30+seed%40), clamp(v-60)
			yy, cb, cr := color.RGBToYCbCr(r, g, b)
			img.Y[img.YOffset(x, y)] = yy
			img.Cb[img.COffset(x, y)] = cb
			img.Cr[img.COffset(x, y)] = cr
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err) // encoding to memory does not fail
	}
	return buf.Bytes()
}

func clamp(v int) uint8 { return uint8(max(0, min(255, v))) }

// LoadManifest reads dir/lab.json.
func LoadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := cardsim.DecodeImage(b, &m); err != nil {
		return nil, fmt.Errorf("labset: %s/lab.json: %w", dir, err)
	}
	return &m, nil
}

// Roots loads one of the manifest's trust lists ("bkn", "dukcapil",
// "backoffice") as a certificate pool.
func (m *Manifest) Roots(dir, name string) (*x509.CertPool, error) {
	rel, ok := m.Trust[name]
	if !ok {
		return nil, fmt.Errorf("labset: no trust list %q", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("labset: %s: no certificates", rel)
	}
	return pool, nil
}

// Card returns the manifest entry of the card whose image is cards/<file>.json.
func (m *Manifest) Card(file string) (ManifestCard, bool) {
	for _, c := range m.Cards {
		if c.Image == filepath.Join("cards", file+".json") {
			return c, true
		}
	}
	return ManifestCard{}, false
}
