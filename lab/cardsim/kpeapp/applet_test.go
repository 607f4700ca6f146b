package kpeapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/sod"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
)

var (
	master = bytes.Repeat([]byte{0x4B}, 16)
	now    = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
)

type issuer struct {
	key   *ecdsa.PrivateKey
	cert  *x509.Certificate
	roots *x509.CertPool
}

func newIssuer(t testing.TB) issuer {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lab BKN CA"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, _ := x509.ParseCertificate(caDER)
	dsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ds := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Lab BKN Document Signer"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(3, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	dsDER, err := x509.CreateCertificate(rand.Reader, ds, caCert, &dsKey.PublicKey, caKey)
	require.NoError(t, err)
	dsCert, _ := x509.ParseCertificate(dsDER)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return issuer{dsKey, dsCert, roots}
}

// sampleCard personalises a KPE; tamper, if set, alters a group after the
// issuer signed it; keyMaster lets a clone use another master.
func sampleCard(t testing.TB, is issuer, keyMaster []byte, tamper func(map[uint16][]byte)) *kpeapp.Applet {
	serial := [8]byte{0, 0, 0, 0, 0, 0, 0, 1}
	files := map[uint16][]byte{
		kpe.FIDCardInfo:   kpe.CardInfo{Serial: serial, Type: kpe.CardKPE, ProfileVersion: 1, MaxResponse: 256, IssuerID: "BKN"}.Encode(),
		kpe.FIDIdentity:   kpe.Identity{NIP: "196608011988031001", Name: "Dr. Bambang Sutrisno, M.Si.", BirthDate: "19660801", Gender: "L", NIK: "3471010108660001"}.Encode(),
		kpe.FIDEmployment: kpe.Employment{Status: "PNS", GolonganRuang: "IV/c", WorkUnits: []kpe.WorkUnit{{Level: 1, Name: "Kantor Regional I"}}}.Encode(),
		kpe.FIDFamily:     kpe.Family{Members: []kpe.Member{{Spouse: true, Name: "Sri Wahyuni", Dependant: true}}}.Encode(),
		kpe.FIDBenefits:   kpe.Benefits{BPJSNumber: "0001234567890", BankName: "BRI", AccountMasked: "****4321"}.Encode(),
		kpe.FIDPhoto:      bytes.Repeat([]byte{0xFF, 0xD8, 0x42}, 4000),
	}
	groups := map[int][]byte{kpe.DGIdentity: files[kpe.FIDIdentity], kpe.DGEmployment: files[kpe.FIDEmployment],
		kpe.DGFamily: files[kpe.FIDFamily], kpe.DGBenefits: files[kpe.FIDBenefits], kpe.DGPhoto: files[kpe.FIDPhoto]}
	so, err := sod.Sign(groups, is.key, is.cert)
	require.NoError(t, err)
	files[kpe.FIDSOD] = so
	if tamper != nil {
		tamper(files)
	}
	keys, err := kpe.DeriveCardKeys(keyMaster, serial)
	require.NoError(t, err)
	a, err := kpeapp.New(kpeapp.Config{Name: "sample-kpe", Keys: keys, Files: files})
	require.NoError(t, err)
	return a
}

func readIn(t *testing.T, a *kpeapp.Applet, photo bool, roots *x509.CertPool) (*kpe.Card, error) {
	r := cardsim.NewMemReader("mem")
	r.Insert(a)
	c, err := r.Connect(context.Background())
	require.NoError(t, err)
	return kpe.Read(context.Background(), c, kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{Photo: photo, Roots: roots, Now: now})
}

// newLabSAM is a SAM holding the lab KPE master key (activation code 123456).
func newLabSAM(t testing.TB) *samapp.Applet {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	s, err := samapp.New(samapp.Config{Name: "lab-sam", Serial: [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1},
		ActivationCode: []byte("123456"), Key: key, StatePath: filepath.Join(t.TempDir(), "sam.json"), KPEMaster: master})
	require.NoError(t, err)
	return s
}

// With the SAM applet as authenticator (in-process): genuine and clone.
func TestReadWithSAM(t *testing.T) {
	ctx := context.Background()
	is := newIssuer(t)
	samReader := cardsim.NewMemReader("sam")
	samReader.Insert(newLabSAM(t))
	samCard, err := samReader.Connect(ctx)
	require.NoError(t, err)
	s, err := sam.Open(ctx, samCard)
	require.NoError(t, err)

	read := func(a *kpeapp.Applet) *kpe.Card {
		r := cardsim.NewMemReader("kpe")
		r.Insert(a)
		c, err := r.Connect(ctx)
		require.NoError(t, err)
		card, err := kpe.Read(ctx, c, s, kpe.ReadOptions{Roots: is.roots, Now: now})
		require.NoError(t, err)
		return card
	}
	// Not activated yet: a clear error, not a verdict about the card.
	r := cardsim.NewMemReader("kpe")
	r.Insert(sampleCard(t, is, master, nil))
	c, _ := r.Connect(ctx)
	_, err = kpe.Read(ctx, c, s, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.ErrorIs(t, err, sam.ErrNotActivated)

	require.NoError(t, s.Activate(ctx, []byte("123456")))
	genuine := read(sampleCard(t, is, master, nil))
	require.True(t, genuine.Verification.CardAuthentic.OK)
	require.True(t, genuine.Verification.DataAuthentic.OK)
	clone := read(sampleCard(t, is, bytes.Repeat([]byte{0x99}, 16), nil))
	require.False(t, clone.Verification.CardAuthentic.OK)
}

func TestGenuineCard(t *testing.T) {
	is := newIssuer(t)
	card, err := readIn(t, sampleCard(t, is, master, nil), true, is.roots)
	require.NoError(t, err)
	require.True(t, card.Verification.CardAuthentic.OK)
	require.True(t, card.Verification.DataAuthentic.OK, card.Verification.DataAuthentic.Reason)
	require.Equal(t, "196608011988031001", card.Identity.NIP)
	require.Equal(t, "IV/c", card.Employment.GolonganRuang)
	require.Len(t, card.Family.Members, 1)
	require.Equal(t, "0001234567890", card.Benefits.BPJSNumber)
	require.Len(t, card.Photo, 12000)
}

func TestCloneIsNotGenuine(t *testing.T) {
	is := newIssuer(t)
	clone := sampleCard(t, is, bytes.Repeat([]byte{0x99}, 16), nil) // right data, wrong key
	card, err := readIn(t, clone, false, is.roots)
	require.NoError(t, err)
	require.False(t, card.Verification.CardAuthentic.OK)
	require.Contains(t, card.Verification.CardAuthentic.Reason, "clone")
	require.False(t, card.Verification.DataAuthentic.OK)
	require.Empty(t, card.Identity.NIP, "no protected data from a clone")
}

func TestTamperedGroupIsNamed(t *testing.T) {
	is := newIssuer(t)
	tampered := sampleCard(t, is, master, func(f map[uint16][]byte) {
		f[kpe.FIDEmployment] = kpe.Employment{Status: "PNS", GolonganRuang: "IV/e"}.Encode() // self-promotion
	})
	card, err := readIn(t, tampered, false, is.roots)
	require.NoError(t, err)
	require.True(t, card.Verification.CardAuthentic.OK)
	require.False(t, card.Verification.DataAuthentic.OK)
	require.Equal(t, []int{kpe.DGEmployment}, card.Verification.FailedGroups)
}

func TestUntrustedIssuer(t *testing.T) {
	is := newIssuer(t)
	other := newIssuer(t)
	card, err := readIn(t, sampleCard(t, is, master, nil), false, other.roots)
	require.NoError(t, err)
	require.True(t, card.Verification.CardAuthentic.OK)
	require.False(t, card.Verification.DataAuthentic.OK)
	require.Contains(t, card.Verification.DataAuthentic.Reason, "not trusted")
}

// The applet refuses plain reads of protected groups, broken MACs and
// replayed SSCs with the proper status words.
func TestAppletAccessControl(t *testing.T) {
	is := newIssuer(t)
	a := sampleCard(t, is, master, nil)
	send := func(hexCmd []byte) uint16 {
		r := a.Process(hexCmd)
		return uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
	}
	require.Equal(t, uint16(0x9000), send(append([]byte{0x00, 0xA4, 0x04, 0x0C, 0x05}, kpe.DefaultAID...)))
	require.Equal(t, uint16(0x6982), send([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x02}), "plain SELECT of DG1")
	require.Equal(t, uint16(0x9000), send([]byte{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x01}), "CardInfo is plain")
	require.Equal(t, uint16(0x6982), send([]byte{0x0C, 0xB0, 0x00, 0x00, 0x00}), "SM without a session")
	require.Equal(t, uint16(0x6985), send(append([]byte{0x00, 0x82, 0x00, 0x00, 0x38}, make([]byte, 56)...)), "authenticate without challenge")

	// Open a session with the software SAM, then break it.
	r := cardsim.NewMemReader("mem")
	r.Insert(a)
	c, _ := r.Connect(context.Background())
	cl := apdu.NewClient(c, apdu.Limits{})
	ctx := context.Background()
	_, err := cl.SelectAID(ctx, kpe.DefaultAID)
	require.NoError(t, err)
	rnd, err := cl.GetChallenge(ctx, 16)
	require.NoError(t, err)
	ext, finish, err := kpe.SoftwareSAM{Master: master}.BeginCardAuth(ctx, [8]byte{0, 0, 0, 0, 0, 0, 0, 1}, rnd)
	require.NoError(t, err)
	resp, err := cl.Send(ctx, apdu.Command{INS: 0x82, Data: ext, Ne: 56})
	require.NoError(t, err)
	sess, err := finish(ctx, resp)
	require.NoError(t, err)
	p, err := sess.Wrap(apdu.Command{INS: 0xA4, P1: 2, P2: 0x0C, Data: []byte{0x01, 0x02}})
	require.NoError(t, err)
	raw, _ := p.Bytes()
	good := append([]byte(nil), raw...)
	raw[len(raw)-3] ^= 0x01 // flip a MAC bit
	require.Equal(t, uint16(0x6988), send(raw), "wrong MAC")
	require.Equal(t, uint16(0x6982), send(good), "the session is closed after a wrong MAC")

	// A new session: a command recorded and sent again (replayed SSC) is
	// refused, and the session closes.
	rnd, err = cl.GetChallenge(ctx, 16)
	require.NoError(t, err)
	ext, finish, err = kpe.SoftwareSAM{Master: master}.BeginCardAuth(ctx, [8]byte{0, 0, 0, 0, 0, 0, 0, 1}, rnd)
	require.NoError(t, err)
	resp, err = cl.Send(ctx, apdu.Command{INS: 0x82, Data: ext, Ne: 56})
	require.NoError(t, err)
	sess, err = finish(ctx, resp)
	require.NoError(t, err)
	p, err = sess.Wrap(apdu.Command{INS: 0xA4, P1: 2, P2: 0x0C, Data: []byte{0x01, 0x02}})
	require.NoError(t, err)
	recorded, _ := p.Bytes()
	require.Equal(t, uint16(0x9000), send(recorded))
	require.Equal(t, uint16(0x6988), send(recorded), "replayed SSC")
}

// replayer sends the first protected command again in place of the second.
type replayer struct {
	t     apdu.Transmitter
	first []byte
	n     int
}

func (r *replayer) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if cmd[0]&0x0C != 0 {
		r.n++
		switch r.n {
		case 1:
			r.first = append([]byte(nil), cmd...)
		case 2:
			cmd = r.first
		}
	}
	return r.t.Transmit(ctx, cmd)
}

// The reader says why a read failed when the card refuses a replayed
// command: a secure-messaging failure with the card's status word.
func TestReaderReportsReplay(t *testing.T) {
	is := newIssuer(t)
	r := cardsim.NewMemReader("mem")
	r.Insert(sampleCard(t, is, master, nil))
	c, err := r.Connect(context.Background())
	require.NoError(t, err)
	_, err = kpe.Read(context.Background(), &replayer{t: c}, kpe.SoftwareSAM{Master: master}, kpe.ReadOptions{Roots: is.roots, Now: now})
	require.ErrorIs(t, err, sm.ErrSecureMessaging)
	require.ErrorIs(t, err, apdu.ErrSMDataObjectsIncorrect, "the card's 6988 is reported")
	require.ErrorContains(t, err, "DG1")
}
