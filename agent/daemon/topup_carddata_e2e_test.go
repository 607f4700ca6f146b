package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/internal/kpedata"
	"kpe-agent/internal/sod"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

// topUpQuerySpy stands in front of the back office's terminal listener:
// it keeps the last top-up query and may change it on the way (change
// nil: passed as sent).
type topUpQuerySpy struct {
	mu     sync.Mutex
	last   *wire.TopUpQuery
	change func(q *wire.TopUpQuery)
}

func (s *topUpQuerySpy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != wire.PathTopUpOffer {
			next.ServeHTTP(w, req)
			return
		}
		raw, err := io.ReadAll(req.Body)
		var q wire.TopUpQuery
		if err != nil || json.Unmarshal(raw, &q) != nil {
			http.Error(w, "unreadable query", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.last = &q
		change := s.change
		s.mu.Unlock()
		if change != nil {
			sent := q
			change(&sent)
			raw, _ = json.Marshal(sent)
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		req.ContentLength = int64(len(raw))
		next.ServeHTTP(w, req)
	})
}

func (s *topUpQuerySpy) set(change func(q *wire.TopUpQuery)) {
	s.mu.Lock()
	s.change, s.last = change, nil
	s.mu.Unlock()
}

func (s *topUpQuerySpy) query() *wire.TopUpQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// TestTopUpQueryCarriesCardData: update saldo sends the card's EF.SOD and
// DG1 as read (the EF.SOD covers the DG1, whose NIP is the query's); the
// back office refuses a query whose DG1 is another holder's or that
// carries no card data, which the kiosk shows as refused with nothing
// authorised; the card's own data is answered.
func TestTopUpQueryCarriesCardData(t *testing.T) {
	spy := &topUpQuerySpy{}
	r := newTopUpRig(t, rigOptions{wrapTerminal: spy.wrap})
	k := r.kioskClient(t)
	r.insertCard(t, freshBudi(t))
	tu := r.stageTopUp(t, 100_000, "TRF-2026-0201")
	k.authenticate(t, true)

	refusedBy := func(name string, change func(q *wire.TopUpQuery)) {
		t.Helper()
		spy.set(change)
		v, status, e := k.topUpAct(t, api.PathTopUpCheck)
		require.Equal(t, http.StatusOK, status, "%s: %+v", name, e)
		assert.Equal(t, api.TopUpNone, v.TopUp.State, name)
		assert.Equal(t, "refused", v.TopUp.Reason, name)
		assert.NotEmpty(t, v.TopUp.Message, name)
		assert.Equal(t, backoffice.TopUpStaged, r.topUp(t, tu.ID).Status, "%s: nothing authorised", name)
	}
	refusedBy("another holder's DG1", func(q *wire.TopUpQuery) {
		q.DG1 = kpedata.Identity{NIP: "199001012015011001", Name: "Other Holder"}.Encode()
	})
	refusedBy("a DG1 with the NIP the EF.SOD does not cover", func(q *wire.TopUpQuery) {
		q.DG1 = kpedata.Identity{NIP: q.NIP, Name: "Somebody Else"}.Encode()
	})
	refusedBy("no card data", func(q *wire.TopUpQuery) { q.SOD, q.DG1 = nil, nil })

	spy.set(nil)
	v, status, e := k.topUpAct(t, api.PathTopUpCheck)
	require.Equal(t, http.StatusOK, status, "%+v", e)
	require.Equal(t, api.TopUpAvailable, v.TopUp.State, "%+v", v.TopUp)
	assert.Equal(t, backoffice.TopUpAuthorised, r.topUp(t, tu.ID).Status)
	q := spy.query()
	require.NotNil(t, q)
	assert.Equal(t, budiNIP, q.NIP)
	id, err := kpedata.ParseIdentity(q.DG1)
	require.NoError(t, err, "the DG1 as read")
	assert.Equal(t, budiNIP, id.NIP)
	o, err := sod.Parse(q.SOD)
	require.NoError(t, err, "the EF.SOD as read")
	assert.NoError(t, o.CheckGroup(kpedata.DGIdentity, q.DG1), "the EF.SOD covers the DG1 sent")
}
