package daemon

import (
	"io"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/buildinfo"
)

// kpe_build_info says which build runs, as kpe-agent version does.
func TestBuildInfoMetric(t *testing.T) {
	srv := httptest.NewServer(NewMetrics().Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	bi := buildinfo.Read()
	assert.Contains(t, string(b), "# TYPE kpe_build_info gauge\n")
	assert.Contains(t, string(b), `kpe_build_info{commit="`+bi.Commit+`",go_version="`+runtime.Version()+`",version="`+bi.Version+`"} 1`+"\n")
}
