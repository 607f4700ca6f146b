package kpeapp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu"
	"kpe-agent/apdu/kpe"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/kpeapp"
	"kpe-agent/lab/cardsim/samapp"
)

var (
	debitMaster  = bytes.Repeat([]byte{0xD1}, 16)
	creditMaster = bytes.Repeat([]byte{0xC1}, 16)
	samSerial    = [8]byte{0x53, 0x41, 0x4D, 0, 0, 0, 0, 1}
	payTime      = time.UnixMilli(1_780_000_000_000)
)

func purseCard(t testing.TB, serial [8]byte, balance, maxBalance uint32) (*kpeapp.Applet, *cardsim.MemReader) {
	t.Helper()
	keys, err := kpe.DeriveCardKeys(master, serial)
	require.NoError(t, err)
	dk, err := kpe.DerivePurseKey(kpe.PurseDebit, debitMaster, serial)
	require.NoError(t, err)
	ck, err := kpe.DerivePurseKey(kpe.PurseCredit, creditMaster, serial)
	require.NoError(t, err)
	a, err := kpeapp.New(kpeapp.Config{Name: "purse-kpe", Keys: keys, Files: map[uint16][]byte{kpe.FIDCardInfo: {0}},
		Purse: &kpeapp.PurseConfig{Serial: serial, DebitKey: dk, CreditKey: ck, Balance: balance, MaxBalance: maxBalance}})
	require.NoError(t, err)
	r := cardsim.NewMemReader("kpe")
	r.Insert(a)
	return a, r
}

// purseSAM is an activated lab SAM with both purse masters whose credits
// are authorised by a lab top-up issuer (samapp.AuthorisingSAM).
func purseSAM(t testing.TB) samapp.AuthorisingSAM {
	iss, err := samapp.NewTopUpIssuer("kpeapp test")
	require.NoError(t, err)
	s := activeSAM(t, func(c *samapp.Config) {
		c.DebitMaster, c.CreditMaster, c.TopUpRoots = debitMaster, creditMaster, []*x509.Certificate{iss.Root}
	})
	return samapp.AuthorisingSAM{SAM: s, Issuer: iss}
}

// Credit then debit through the lab SAM: balances, PTC, answers and the
// log (newest first) agree, and each proof is the one in the log.
func TestPurseDebitCreditEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := purseSAM(t)
	a, r := purseCard(t, updSerial, 0, 0)
	c := connectMem(t, r)

	cr, err := kpe.Credit(ctx, c, s, updSerial, 50_000, payTime)
	require.NoError(t, err)
	require.Equal(t, uint32(50_000), cr.Proof.Balance)
	require.Equal(t, uint32(1), cr.Proof.PTC)
	require.Equal(t, samSerial, cr.Proof.SAMSerial)
	db, err := kpe.Debit(ctx, c, s, updSerial, 12_500, payTime.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, uint32(37_500), db.Proof.Balance)
	require.Equal(t, uint32(2), db.Proof.PTC)
	require.Equal(t, cr.Proof.SAMTxn+1, db.Proof.SAMTxn)

	st, err := kpe.ReadPurse(ctx, c, nil)
	require.NoError(t, err)
	require.Equal(t, kpe.PurseState{Balance: 37_500, PTC: 2, MaxBalance: kpe.DefaultMaxBalance}, st)
	cardSt, _ := a.Purse()
	require.Equal(t, st, cardSt)
	log, err := kpe.ReadPurseLog(ctx, c, nil)
	require.NoError(t, err)
	require.Len(t, log, 2)
	require.Equal(t, kpe.PurseLogEntry{Kind: kpe.PurseDebit, Amount: 12_500, Balance: 37_500, PTC: 2, SAMSerial: samSerial,
		SAMTxn: db.Proof.SAMTxn, Time: payTime.Add(time.Minute).UnixMilli(), MAC: db.Proof.MAC}, log[0])
	require.Equal(t, kpe.PurseCredit, log[1].Kind)
	e, ok := kpe.FindInLog(log, samSerial, cr.Proof.SAMTxn)
	require.True(t, ok)
	require.Equal(t, cr.Proof, e.Proof(updSerial))
	_, ok = kpe.FindInLog(log, samSerial, db.Proof.SAMTxn+1)
	require.False(t, ok)
}

// The cyclic log keeps the last 10 transactions.
func TestPurseLogCycles(t *testing.T) {
	ctx := context.Background()
	s := purseSAM(t)
	_, r := purseCard(t, updSerial, 100, 0)
	c := connectMem(t, r)
	for i := 1; i <= 12; i++ {
		_, err := kpe.Debit(ctx, c, s, updSerial, uint32(i), payTime)
		require.NoError(t, err)
	}
	log, err := kpe.ReadPurseLog(ctx, c, nil)
	require.NoError(t, err)
	require.Len(t, log, kpe.PurseLogSize)
	require.Equal(t, uint32(12), log[0].PTC)
	require.Equal(t, uint32(3), log[9].PTC)
	require.Equal(t, uint32(100-78), log[0].Balance)
}

// Debit to exactly zero passes, one rupiah more is refused; credit to
// exactly the maximum passes, one more is refused; refusals change
// nothing but the SAM's txn number.
func TestPurseLimitsAtEdges(t *testing.T) {
	ctx := context.Background()
	s := purseSAM(t)
	a, r := purseCard(t, updSerial, 1_000, 5_000)
	c := connectMem(t, r)
	_, err := kpe.Debit(ctx, c, s, updSerial, 1_001, payTime)
	require.ErrorIs(t, err, kpe.ErrInsufficientFunds)
	var pe *kpe.PurseError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Sent, "the DEBIT was transmitted: a status word alone does not prove the card did not take it")
	_, found, err := kpe.ResolvePurse(ctx, c, s, updSerial, pe.SAMSerial, pe.SAMTxn)
	require.NoError(t, err)
	require.False(t, found, "the card's log says it did not")
	st, log := a.Purse()
	require.Equal(t, kpe.PurseState{Balance: 1_000, PTC: 0, MaxBalance: 5_000}, st)
	require.Empty(t, log)
	_, err = kpe.Debit(ctx, c, s, updSerial, 1_000, payTime)
	require.NoError(t, err)
	_, err = kpe.Debit(ctx, c, s, updSerial, 1, payTime)
	require.ErrorIs(t, err, kpe.ErrInsufficientFunds)
	_, err = kpe.Credit(ctx, c, s, updSerial, 5_001, payTime)
	require.ErrorIs(t, err, kpe.ErrOverMaxBalance)
	_, err = kpe.Credit(ctx, c, s, updSerial, 5_000, payTime)
	require.NoError(t, err)
	_, err = kpe.Credit(ctx, c, s, updSerial, 1, payTime)
	require.ErrorIs(t, err, kpe.ErrOverMaxBalance)
	st, log = a.Purse()
	require.Equal(t, kpe.PurseState{Balance: 5_000, PTC: 2, MaxBalance: 5_000}, st)
	require.Len(t, log, 2)
}

func sendPurse(t testing.TB, c apdu.Card, ins byte, data []byte) ([]byte, uint16) {
	t.Helper()
	raw, err := apdu.Command{CLA: kpe.CLAProprietary, INS: ins, Data: data, Ne: kpe.PurseAnswerLen}.Bytes()
	require.NoError(t, err)
	out, err := c.Transmit(context.Background(), raw)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(out), 2)
	return out[:len(out)-2], uint16(out[len(out)-2])<<8 | uint16(out[len(out)-1])
}

// A forged MAC_SAM is refused with 6982 and nothing changes; the genuine
// DEBIT passes once, and its replay is refused (the PTC moved).
func TestPurseForgedAndReplayedDebit(t *testing.T) {
	ctx := context.Background()
	s := purseSAM(t)
	a, r := purseCard(t, updSerial, 10_000, 0)
	c := connectMem(t, r)
	_, err := kpe.ReadPurse(ctx, c, nil) // selects the application
	require.NoError(t, err)
	sn, txn, mac, err := s.PurseMAC(ctx, kpe.PurseOrder{Kind: kpe.PurseDebit, CardSerial: updSerial, PTC: 0, Amount: 700, Time: payTime.UnixMilli()})
	require.NoError(t, err)
	cmd := kpe.PurseCommand{Amount: 700, SAMSerial: sn, SAMTxn: txn, Time: payTime.UnixMilli(), MAC: mac}

	for name, forged := range map[string]kpe.PurseCommand{
		"mac bit":     func() kpe.PurseCommand { f := cmd; f.MAC[0] ^= 1; return f }(),
		"amount":      func() kpe.PurseCommand { f := cmd; f.Amount = 7; return f }(),
		"sam txn":     func() kpe.PurseCommand { f := cmd; f.SAMTxn++; return f }(),
		"time":        func() kpe.PurseCommand { f := cmd; f.Time++; return f }(),
		"credit type": cmd,
	} {
		ins := kpe.InsPurseDebit
		if name == "credit type" {
			ins = kpe.InsPurseCredit
		}
		_, sw := sendPurse(t, c, ins, forged.Encode())
		require.Equal(t, uint16(0x6982), sw, name)
	}
	st, log := a.Purse()
	require.Equal(t, uint32(10_000), st.Balance)
	require.Zero(t, st.PTC)
	require.Empty(t, log)

	out, sw := sendPurse(t, c, kpe.InsPurseDebit, cmd.Encode())
	require.Equal(t, uint16(0x9000), sw)
	ans, err := kpe.ParsePurseAnswer(out)
	require.NoError(t, err)
	require.Equal(t, uint32(9_300), ans.Balance)
	_, sw = sendPurse(t, c, kpe.InsPurseDebit, cmd.Encode())
	require.Equal(t, uint16(0x6982), sw, "replay")
	st, _ = a.Purse()
	require.Equal(t, kpe.PurseState{Balance: 9_300, PTC: 1, MaxBalance: kpe.DefaultMaxBalance}, st)
	// Malformed: short data, amount 0.
	_, sw = sendPurse(t, c, kpe.InsPurseDebit, cmd.Encode()[:31])
	require.Equal(t, uint16(0x6700), sw)
	zero := cmd
	zero.Amount = 0
	_, sw = sendPurse(t, c, kpe.InsPurseDebit, zero.Encode())
	require.Equal(t, uint16(0x6A80), sw)
}

// A card proof is bound to its card and its figures: the same proof
// claimed for another card, or with another balance, does not verify.
func TestPurseProofFromAnotherCard(t *testing.T) {
	ctx := context.Background()
	s := purseSAM(t)
	_, r := purseCard(t, updSerial, 10_000, 0)
	res, err := kpe.Debit(ctx, connectMem(t, r), s, updSerial, 2_000, payTime)
	require.NoError(t, err)
	require.NoError(t, s.VerifyPurseProof(ctx, res.Proof))
	other := res.Proof
	other.CardSerial = [8]byte{0, 0, 0, 0, 0, 0, 0, 2}
	require.ErrorIs(t, s.VerifyPurseProof(ctx, other), kpe.ErrProof)
	richer := res.Proof
	richer.Balance++
	require.ErrorIs(t, s.VerifyPurseProof(ctx, richer), kpe.ErrProof)
	asCredit := res.Proof
	asCredit.Kind = kpe.PurseCredit
	require.ErrorIs(t, s.VerifyPurseProof(ctx, asCredit), kpe.ErrProof)
}

// A SAM without a purse master answers 6A88 (kpe.ErrNoPurseKey); a card
// without a purse answers 6D00 (kpe.ErrNoPurse).
func TestPurseMissingKeys(t *testing.T) {
	ctx := context.Background()
	s := activeSAM(t, func(c *samapp.Config) { c.DebitMaster = debitMaster })
	_, r := purseCard(t, updSerial, 100, 0)
	c := connectMem(t, r)
	_, err := kpe.Credit(ctx, c, s, updSerial, 10, payTime)
	require.ErrorIs(t, err, kpe.ErrNoPurseKey)
	_, err = kpe.Debit(ctx, c, s, updSerial, 10, payTime)
	require.NoError(t, err)

	plain := cardsim.NewMemReader("plain")
	plain.Insert(renewableCard(t, newIssuer(t)))
	_, err = kpe.ReadPurse(ctx, connectMem(t, plain), nil)
	require.ErrorIs(t, err, kpe.ErrNoPurse)
}

// PURSE MAC's txn number is persisted: a SAM restarted on its state file
// continues after the last number it answered.
func TestPurseTxnPersisted(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cfg := samapp.Config{Name: "lab-sam", Serial: samSerial, ActivationCode: []byte("123456"), Key: key,
		StatePath: filepath.Join(t.TempDir(), "sam.json"), DebitMaster: debitMaster, CreditMaster: creditMaster}
	order := kpe.PurseOrder{Kind: kpe.PurseDebit, CardSerial: updSerial, Amount: 1, Time: 1}
	var last uint32
	for range 2 {
		app, err := samapp.New(cfg)
		require.NoError(t, err)
		r := cardsim.NewMemReader("sam")
		r.Insert(app)
		s, err := sam.Open(ctx, connectMem(t, r))
		require.NoError(t, err)
		require.NoError(t, s.Activate(ctx, []byte("123456")))
		_, txn, _, err := s.PurseMAC(ctx, order)
		require.NoError(t, err)
		require.Equal(t, last+1, txn)
		last = txn
	}
}

// A tear at every APDU of a debit, before (RemoveAtAPDU) and after
// (AnswerLostAtAPDU) the card processes it: afterwards the card's balance
// is the start minus the debits that the log says are done, a debit the
// terminal saw complete is in the log, and a torn one is resolved exactly.
func TestPurseTearEveryAPDU(t *testing.T) {
	ctx := context.Background()
	const start, amount = 10_000, 1_500
	// A debit is SELECT, READ PURSE, DEBIT on the card.
	for _, kind := range []string{"remove", "answer-lost"} {
		for n := 1; n <= 4; n++ {
			t.Run(fmt.Sprintf("%s-%d", kind, n), func(t *testing.T) {
				s := purseSAM(t)
				a, r := purseCard(t, updSerial, start, 0)
				c := connectMem(t, r)
				f := cardsim.Fault{RemoveAtAPDU: n, ReinsertAfter: time.Millisecond}
				if kind == "answer-lost" {
					f = cardsim.Fault{AnswerLostAtAPDU: n, ReinsertAfter: time.Millisecond}
				}
				r.SetFault(f)
				res, err := kpe.Debit(ctx, c, s, updSerial, amount, payTime)
				r.ClearFault()
				c = connectMem(t, r)
				done := false
				var pe *kpe.PurseError
				switch {
				case err == nil:
					done = true
					require.Equal(t, 4, n, "a debit of 3 APDUs completes only when the fault is past it")
				case errors.As(err, &pe) && pe.Sent:
					require.ErrorIs(t, err, apdu.ErrCardRemoved)
					e, found, rerr := kpe.ResolvePurse(ctx, c, s, updSerial, pe.SAMSerial, pe.SAMTxn)
					require.NoError(t, rerr)
					done = found
					// The DEBIT reached the card only when its answer was lost.
					require.Equal(t, kind == "answer-lost", found)
					if found {
						require.Equal(t, uint32(start-amount), e.Balance)
					}
				default:
					require.ErrorIs(t, err, apdu.ErrCardRemoved)
				}
				st, err := kpe.ReadPurse(ctx, c, nil)
				require.NoError(t, err)
				log, err := kpe.ReadPurseLog(ctx, c, nil)
				require.NoError(t, err)
				want := uint32(start)
				if done {
					want -= amount
					require.Len(t, log, 1)
					if err == nil && res.Proof.PTC != 0 {
						_, ok := kpe.FindInLog(log, res.Proof.SAMSerial, res.Proof.SAMTxn)
						require.True(t, ok)
					}
				} else {
					require.Empty(t, log)
				}
				require.Equal(t, want, st.Balance)
				cardSt, _ := a.Purse()
				require.Equal(t, st, cardSt)
			})
		}
	}
}

// A kpe image carries the purse: written by Image, parsed back, the card
// answers READ PURSE with the personalised figures and takes a debit.
func TestPurseImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	keys, err := kpe.DeriveCardKeys(master, updSerial)
	require.NoError(t, err)
	dk, err := kpe.DerivePurseKey(kpe.PurseDebit, debitMaster, updSerial)
	require.NoError(t, err)
	ck, err := kpe.DerivePurseKey(kpe.PurseCredit, creditMaster, updSerial)
	require.NoError(t, err)
	img, err := kpeapp.Image("kpe", kpeapp.Config{Name: "purse", Keys: keys, Files: map[uint16][]byte{kpe.FIDCardInfo: {0}},
		Purse: &kpeapp.PurseConfig{Serial: updSerial, DebitKey: dk, CreditKey: ck, Balance: 750, PTC: 4, MaxBalance: 1_000_000}}, "", nil)
	require.NoError(t, err)
	card, err := cardsim.ParseCard(img, "")
	require.NoError(t, err)
	r := cardsim.NewMemReader("kpe")
	r.Insert(card)
	c := connectMem(t, r)
	st, err := kpe.ReadPurse(ctx, c, nil)
	require.NoError(t, err)
	require.Equal(t, kpe.PurseState{Balance: 750, PTC: 4, MaxBalance: 1_000_000}, st)
	res, err := kpe.Debit(ctx, c, purseSAM(t), updSerial, 750, payTime)
	require.NoError(t, err)
	require.Equal(t, uint32(5), res.Proof.PTC)
	require.Zero(t, res.Proof.Balance)

	_, err = cardsim.ParseCard(bytes.Replace(img, []byte(`"type": "kpe"`), []byte(`"type": "ktpel"`), 1), "")
	require.Error(t, err)
}
