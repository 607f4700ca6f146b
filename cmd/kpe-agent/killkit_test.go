package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/sync/outbox"
)

// What the kill tests (renewal, payment, top-up) do with the lab
// terminal: a request the kill will end, the lab's holds, the killed
// agent's purse journal, and the sync afterwards.

// postAsync sends POST path with body to the agent in the background; the
// channel closes when the request has ended (the kill ends it).
func (lt *labTerminal) postAsync(t *testing.T, path string, body any) chan struct{} {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	a := lt.agent
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, err := http.NewRequest("POST", a.base+path, bytes.NewReader(b))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return done
}

// waitHold waits until the lab's slot holds its APDU.
func (lt *labTerminal) waitHold(t *testing.T, slot int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd, err := lt.lab.WaitHold(ctx, slot)
	require.NoError(t, err, "slot %d held no APDU", slot)
	require.GreaterOrEqual(t, len(cmd), 4)
	return cmd
}

// purseJournal is the kill card's purse journal entry in the outbox of
// the killed agent (nil: none).
func (lt *labTerminal) purseJournal(t *testing.T) *outbox.PurseJournal {
	t.Helper()
	ob, err := outbox.Open(lt.cfg.Outbox.Path, outbox.Options{})
	require.NoError(t, err)
	defer ob.Close()
	j, err := ob.PurseJournalOf(killSerial)
	require.NoError(t, err)
	return j
}

// synced sends the outbox now and waits until it is empty.
func (lt *labTerminal) synced(t *testing.T) {
	t.Helper()
	a := lt.agent
	var q api.QueueStatus
	require.Eventually(t, func() bool {
		a.call(t, "POST", api.PathSync, nil, nil)
		q = api.QueueStatus{}
		st, _ := a.call(t, "GET", api.PathQueue, nil, &q)
		return st == http.StatusOK && q.Pending == 0 && q.Sending == 0
	}, 20*time.Second, 100*time.Millisecond, "the outbox does not empty: %+v", q)
	require.Zero(t, q.Dead, "no record dead-lettered")
}
