package backoffice

import (
	"context"
	"testing"
	"time"
)

// countingSessions is the session half of an AccountStore that counts
// writes (the rest is never called here).
type countingSessions struct {
	AccountStore
	commits, deletes int
}

func (c *countingSessions) SessionCommit(context.Context, string, []byte, time.Time) error {
	c.commits++
	return nil
}

func (c *countingSessions) SessionDelete(context.Context, string) error {
	c.deletes++
	return nil
}

// A session whose data did not change is written again only when its
// expiry moved by sessionTouch or more, so a staff request is not a
// database write each; a change, a deletion or an expired entry is
// always written.
func TestSessionTouchThrottled(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	st := &countingSessions{}
	s := sessionStore{st: st, now: func() time.Time { return now }, recent: &recentCommits{m: map[string]recentCommit{}}}
	ctx := context.Background()
	commit := func(token, data string) {
		// scs's expiry is by the wall clock; the store's by now
		if err := s.CommitCtx(ctx, token, []byte(data), time.Now().Add(SessionIdleTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	step := func(d time.Duration, token, data string, want int) {
		t.Helper()
		now = now.Add(d)
		commit(token, data)
		if st.commits != want {
			t.Fatalf("after %v: %d writes, want %d", d, st.commits, want)
		}
	}
	step(0, "a", "x", 1)              // new
	step(10*time.Second, "a", "x", 1) // same data, expiry moved 10 s: left out
	step(40*time.Second, "a", "x", 1) // 50 s since the write
	step(20*time.Second, "a", "x", 2) // 70 s: written
	step(time.Second, "a", "y", 3)    // changed
	step(time.Second, "b", "y", 4)    // another session
	if err := s.DeleteCtx(ctx, "a"); err != nil || st.deletes != 1 {
		t.Fatal(err, st.deletes)
	}
	step(time.Second, "a", "y", 5)                    // after a deletion: written
	step(SessionIdleTimeout+time.Minute, "b", "y", 6) // b's last write expired: written

	r := &recentCommits{m: map[string]recentCommit{}}
	for i := range maxRecentCommits + 5 {
		r.note(string(rune(i)), [32]byte{}, now.Add(time.Hour), now)
	}
	if len(r.m) > maxRecentCommits {
		t.Fatalf("%d remembered, at most %d", len(r.m), maxRecentCommits)
	}
}
