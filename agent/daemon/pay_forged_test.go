package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/apdu/kpe"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// forgedSAM authorises purse commands with a MAC it makes up: what a
// terminal without the purse masters (or a tampered one) would send.
type forgedSAM struct{}

func (forgedSAM) PurseMAC(context.Context, kpe.PurseOrder) ([8]byte, uint32, [kpe.PurseMACLen]byte, error) {
	var mac [kpe.PurseMACLen]byte
	_, _ = rand.Read(mac[:])
	return [8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 1}, 99, mac, nil
}

func (forgedSAM) VerifyPurseProof(context.Context, kpe.PurseProof) error { return nil }

// TestPayForgedReplayedOtherCard: at system level (the agent on pcscd,
// the back office on PostgreSQL with the lab's purse masters), a forged
// DEBIT MAC never moves a card, a replayed payment record is not counted
// twice, a record carrying another card's proof is flagged
// purse-bad-proof and withheld from settlement, and a purse counter
// repeat raises purse-counter-repeat. The lower levels: the applet's MAC
// check (lab/cardsim/kpeapp purse tests), the ledger stream
// (sync/backoffice TestPurseLedgerStream: repeat, gap, mismatch, bad
// proof, duplicate).
func TestPayForgedReplayedOtherCard(t *testing.T) {
	r := newPayRig(t)
	card := freshBudi(t)
	r.insertCard(t, card)
	ctx := context.Background()
	res, status, e := r.pay(t, api.PayRequest{Amount: 12_000, MerchantRef: "INV-GENUINE", IdempotencyKey: "forged-genuine"})
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.PayDone, res.Status)
	r.syncNow(t)
	genuine := r.payRecords(t)[0]

	t.Run("forged DEBIT MAC", func(t *testing.T) {
		// a DEBIT authorised by a made-up MAC: the card refuses it (6982)
		before, log := purseOf(t, card)
		_, err := kpe.Debit(ctx, direct{card}, forgedSAM{}, budiSerial, 1_000, time.Now())
		require.ErrorIs(t, err, kpe.ErrPurseMAC)
		after, log2 := purseOf(t, card)
		assert.Equal(t, before, after, "the card did not move")
		assert.Equal(t, log, log2)
		// the clone (a purse under other masters): refused, not debited
		r.pull(t)
		clone := pcsctest.Insert(t, r.lab, 0, "lab/cards/kpe-clone.json")
		r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool {
			return rd.CardPresent && (rd.State == api.StateAuthenticated || rd.State == api.StateFailed)
		})
		cb, _ := purseOf(t, clone)
		res, status, e := r.pay(t, api.PayRequest{Amount: 1_000, IdempotencyKey: "forged-clone"})
		t.Logf("the clone's payment: %d %+v %+v", status, e, res)
		assert.NotEqual(t, api.PayDone, res.Status)
		ca, _ := purseOf(t, clone)
		assert.Equal(t, cb, ca, "the clone's purse did not move")
		assert.Len(t, r.payRecords(t), 1, "no record")
		r.pull(t)
		r.insertCard(t, card)
	})

	// a SAM that seals records the back office trusts: the lab SAM's key,
	// at another terminal (as a stolen SAM would)
	forger := labSAMSigner(t, 1_000_000)
	var prev [32]byte
	ingest := func(t *testing.T, rec *record.Record) wire.Result {
		t.Helper()
		rec.TerminalID, rec.PrevHash, rec.Time = "forge-01", prev, time.Now()
		require.NoError(t, record.Seal(ctx, rec, forger))
		h, err := rec.Hash()
		require.NoError(t, err)
		prev = h
		b, err := rec.Encode()
		require.NoError(t, err)
		res, err := r.svc.Ingest(ctx, &wire.Batch{Certificates: [][]byte{forger.Cert}, Records: [][]byte{b}, SentAt: time.Now()},
			backoffice.Identity{Terminal: "forge-01"})
		require.NoError(t, err)
		require.Len(t, res.Results, 1)
		return res.Results[0]
	}
	purseAlarms := func(t *testing.T) map[string]int {
		t.Helper()
		as, err := r.svc.Alarms(ctx, backoffice.AlarmQuery{Limit: 1000})
		require.NoError(t, err)
		out := map[string]int{}
		for _, a := range as {
			if strings.HasPrefix(a.Kind, "purse-") {
				out[a.Kind]++
			}
		}
		return out
	}

	t.Run("replayed payment record", func(t *testing.T) {
		b, err := genuine.Encode()
		require.NoError(t, err)
		res, err := r.svc.Ingest(ctx, &wire.Batch{Records: [][]byte{b}, SentAt: time.Now()}, backoffice.Identity{Terminal: terminal})
		require.NoError(t, err)
		assert.Equal(t, wire.Duplicate, res.Results[0].Status)
		v, rows, err := r.svc.Purse(ctx, budiSerial, 0)
		require.NoError(t, err)
		assert.Len(t, rows, 1, "counted once")
		assert.Equal(t, int64(budiStartBal-12_000), v.ShadowBalance)
	})

	t.Run("another card's proof", func(t *testing.T) {
		// Budi's genuine proof in a record of another card (Putri's serial)
		rec := *genuine
		p := *genuine.Purse
		rec.Purse, rec.CardSerial = &p, []byte{0, 0, 0, 0, 0, 0, 0x02, 0x02}
		_, _ = rand.Read(p.Request[:])
		var err error
		rec.ID, err = record.NewID()
		require.NoError(t, err)
		res := ingest(t, &rec)
		require.Equal(t, wire.Accepted, res.Status, "%+v", res)
		_, rows, err := r.svc.Purse(ctx, [8]byte(rec.CardSerial), 0)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, backoffice.ProofBad, rows[0].Proof)
		assert.False(t, rows[0].Settled(), "withheld from settlement")
		assert.Equal(t, 1, purseAlarms(t)[backoffice.AlarmPurseBadProof])
	})

	t.Run("purse counter repeat", func(t *testing.T) {
		// a second record of Budi's card at the genuine payment's PTC
		rec := *genuine
		p := *genuine.Purse
		rec.Purse = &p
		_, _ = rand.Read(p.Request[:])
		p.Reference = "INV-REPEAT"
		var err error
		rec.ID, err = record.NewID()
		require.NoError(t, err)
		res := ingest(t, &rec)
		require.Equal(t, wire.Accepted, res.Status, "%+v", res)
		v, rows, err := r.svc.Purse(ctx, budiSerial, 0)
		require.NoError(t, err)
		assert.Len(t, rows, 2)
		assert.Equal(t, int64(1), v.Repeats)
		st, _ := purseOf(t, card)
		assert.Equal(t, int64(st.Balance), v.ShadowBalance, "the repeat is not counted")
		assert.Equal(t, 1, purseAlarms(t)[backoffice.AlarmPurseRepeat])
	})
}

// labSAMSigner is the lab SAM's record signing key (testdata's sam.json)
// as a signer at counter.
func labSAMSigner(t *testing.T, counter uint32) *labpki.SAM {
	t.Helper()
	raw, err := os.ReadFile(pcsctest.RepoPath(labDir + "/cards/sam.json"))
	require.NoError(t, err)
	var img struct{ Serial, Key, Cert string }
	require.NoError(t, json.Unmarshal(raw, &img))
	hexOf := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		require.NoError(t, err)
		return b
	}
	k, err := x509.ParsePKCS8PrivateKey(hexOf(img.Key))
	require.NoError(t, err)
	return labpki.SAMFrom(k.(*ecdsa.PrivateKey), hexOf(img.Cert), [8]byte(hexOf(img.Serial)), counter)
}

var _ cardsim.Card = (*tracedCard)(nil)
