package backoffice_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/wire"
)

func TestTerminalHandlerBadInput(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	// plain HTTP: the bad input is refused before any identity matters
	svc, err := backoffice.New(st, backoffice.Config{CA: l.ca.Pool(), PlaintextTerminals: true})
	require.NoError(t, err)
	srv := httptest.NewServer(svc.TerminalHandler(nil))
	defer srv.Close()
	post := func(body []byte, enc string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+wire.PathRecords, bytes.NewReader(body))
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	batch, _ := json.Marshal(wire.Batch{Certificates: [][]byte{l.sam.Cert}, Records: l.records(2, "t-01")})

	code, body := post(gz(batch), "gzip")
	require.Equal(t, 200, code, "%s", body)
	res, err := wire.DecodeBatchResult(body, 2)
	require.NoError(t, err)
	assert.Equal(t, wire.Accepted, res.Results[0].Status)

	for _, c := range []struct {
		name   string
		body   []byte
		enc    string
		status int
	}{
		{"not JSON", []byte("{"), "", 400},
		{"unknown field", []byte(`{"records":[],"extra":1}`), "", 400},
		{"not gzip", []byte("plain"), "gzip", 400},
		{"unknown encoding", batch, "br", 415},
		{"too many records", []byte(`{"records":[` + strings.Repeat(`"S1BSAQ==",`, wire.MaxBatchRecords) + `"S1BSAQ=="]}`), "", 413},
		{"gzip bomb", gz(bytes.Repeat([]byte(" "), wire.MaxBatchBytes+10)), "gzip", 413},
	} {
		code, body := post(c.body, c.enc)
		assert.Equal(t, c.status, code, "%s: %s", c.name, body)
		var p wire.Problem
		assert.NoError(t, json.Unmarshal(body, &p), c.name)
		assert.NotEmpty(t, p.Error, c.name)
	}
	// a reply that does not cover the batch is refused by the client side
	_, err = wire.DecodeBatchResult([]byte(`{"results":[]}`), 1)
	assert.ErrorIs(t, err, wire.ErrResponse)
	_, err = wire.DecodeBatchResult([]byte(`{"results":[{"status":"rejected"}]}`), 1)
	assert.ErrorIs(t, err, wire.ErrResponse)
}
