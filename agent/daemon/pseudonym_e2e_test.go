package daemon_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/agent/daemon"
	"kpe-agent/apdu/sam"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/cardsim/samapp"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/record"
)

// ktpel-siti's NIK and chip UID (testdata/cards/lab/spec.json).
const (
	sitiNIK = "3174055203870002"
	sitiUID = "04528A1C6D3180"
)

// authKTPel authenticates ktpel-siti in slot 0 and returns the record the
// agent stored for it, or the API error.
func (r *rig) authKTPel(t *testing.T) (*record.Record, int, api.Error) {
	t.Helper()
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	r.insert(0, "ktpel-siti.json")
	defer func() {
		require.NoError(t, r.lab.Remove(0))
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	}()
	var res api.AuthResult
	status, e := r.call("POST", api.PathAuth, api.AuthRequest{Service: "askes", Operator: "clerk-01", WaitSeconds: 10}, &res)
	if status != http.StatusOK {
		return nil, status, e
	}
	rec, err := r.ob.Last()
	require.NoError(t, err)
	require.Equal(t, res.RecordID, hex.EncodeToString(rec.ID[:]))
	return rec, status, e
}

// labSAMImage is the lab set's SAM image and its institution pseudonym key.
func labSAMImage(t *testing.T) ([]byte, []byte) {
	t.Helper()
	img, err := os.ReadFile(pcsctest.RepoPath("testdata/cards/lab/cards/sam.json"))
	require.NoError(t, err)
	key, err := samapp.ImagePseudonymKey(img)
	require.NoError(t, err)
	require.NotEmpty(t, key)
	return img, key
}

// A KTP-el record holds neither the NIK nor the chip UID: its subject is
// the NIK's pseudonym computed by the SAM (PSEUDONYM, with the key of the
// lab SAM's personalisation, which the agent never has), its card serial
// the first 16 bytes of the UID's pseudonym. A SAM without the pseudonym
// key refuses KTP-el authentication with ktpel-not-configured.
func TestKTPelPseudonymFromSAM(t *testing.T) {
	r := newRig(t)
	img, key := labSAMImage(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)

	rec, status, e := r.authKTPel(t)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	uid, err := hex.DecodeString(sitiUID)
	require.NoError(t, err)
	require.Equal(t, record.CardKTPel, rec.CardType)
	require.NotEqual(t, uid, rec.CardSerial, "the chip UID is not stored")
	require.False(t, bytes.Contains(rec.CardSerial, uid[len(uid)-4:]), "nor part of it")
	wantSerial := sam.PseudonymOf(key, sam.DomainChipUID, uid)
	require.Equal(t, wantSerial[:16], rec.CardSerial)
	wantSubject := sam.PseudonymOf(key, sam.DomainNIK, []byte(sitiNIK))
	require.Equal(t, record.SubjectNIKHash, rec.SubjectKind)
	require.Equal(t, hex.EncodeToString(wantSubject[:]), rec.Subject, "the subject is the SAM's pseudonym of the NIK")
	require.NotEqual(t, record.NIKHash([]byte("e2e institution NIK key"), sitiNIK), rec.Subject)
	enc, err := rec.Encode()
	require.NoError(t, err)
	require.False(t, bytes.Contains(enc, []byte(sitiNIK)), "no NIK in the record")
	require.False(t, bytes.Contains(enc, uid), "no UID in the record")

	// the same SAM without its pseudonym key
	var m map[string]any
	require.NoError(t, json.Unmarshal(img, &m))
	delete(m, "pseudonym_key")
	noKey, err := json.Marshal(m)
	require.NoError(t, err)
	c, err := cardsim.ParseCard(noKey, "")
	require.NoError(t, err)
	require.NoError(t, r.lab.Remove(1))
	pcsctest.WaitCard(t, pcsctest.Slot1, false, 15*time.Second)
	require.NoError(t, r.lab.Insert(1, c))
	pcsctest.WaitCard(t, pcsctest.Slot1, true, 15*time.Second)
	r.waitHealth(samReady)
	last, err := r.ob.Last()
	require.NoError(t, err)
	_, status, e = r.authKTPel(t)
	require.Equal(t, http.StatusUnprocessableEntity, status, "%+v", e)
	require.Equal(t, daemon.CodeKTPelNotSetUp, e.Code)
	after, err := r.ob.Last()
	require.NoError(t, err)
	require.Equal(t, last.ID, after.ID, "nothing recorded")
}

// The explicit fallback (ktpel.pseudonym: file): the agent computes the
// same function on the host with the key file, and says so in a warning
// at start.
func TestKTPelPseudonymFileFallback(t *testing.T) {
	r := newRig(t)
	r.insert(1, "sam.json")
	r.waitHealth(samReady)
	require.False(t, r.logs.seen(daemon.PseudonymFileWarning))

	fileKey := bytes.Repeat([]byte("f"), 32)
	r.nikKey = fileKey
	r.restart()
	require.Eventually(t, func() bool { return r.logs.seen(daemon.PseudonymFileWarning) }, 20*time.Second, 10*time.Millisecond)
	r.waitHealth(samReady)

	rec, status, e := r.authKTPel(t)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	uid, err := hex.DecodeString(sitiUID)
	require.NoError(t, err)
	wantSerial := sam.PseudonymOf(fileKey, sam.DomainChipUID, uid)
	require.Equal(t, wantSerial[:16], rec.CardSerial)
	wantSubject := sam.PseudonymOf(fileKey, sam.DomainNIK, []byte(sitiNIK))
	require.Equal(t, hex.EncodeToString(wantSubject[:]), rec.Subject)
}
