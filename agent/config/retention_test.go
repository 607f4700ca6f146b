package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// outbox.retention: how long acknowledged records stay in the outbox
// before the agent prunes them. 30 days unless set; at least two days,
// so that the counter screen's list of today's codes (which reaches back
// to yesterday evening) never loses a record of today.
func TestOutboxRetention(t *testing.T) {
	ids := map[string]string{"terminal.id": "T", "terminal.site": "S"}
	c, err := Load(Source{Set: ids})
	require.NoError(t, err)
	require.Equal(t, 30*24*time.Hour, c.Outbox.Retention, "the default")

	c, err = Load(Source{File: writeFile(t, minimal+"outbox:\n  retention: 240h\n")})
	require.NoError(t, err)
	require.Equal(t, 240*time.Hour, c.Outbox.Retention, "from the file")

	c, err = Load(Source{Set: ids, Environ: []string{"KPE_OUTBOX_RETENTION=72h"}})
	require.NoError(t, err)
	require.Equal(t, 72*time.Hour, c.Outbox.Retention, "from the environment")

	for _, v := range []string{"36h", "0s", "-1h"} {
		_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "outbox.retention": v}})
		e := problemFor(t, err, "outbox.retention")
		require.Equal(t, "--set outbox.retention", e.File)
		require.Contains(t, e.Error(), "want", v)
	}
	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "outbox.retention": "36h"}})
	require.Contains(t, problemFor(t, err, "outbox.retention").Error(), `outbox.retention: "36h0m0s" is too short; want at least 48h0m0s`)
}
