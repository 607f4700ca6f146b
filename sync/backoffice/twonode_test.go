package backoffice_test

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// fleetBatch is one terminal's batch.
type fleetBatch struct {
	terminal string
	recs     [][]byte
}

// fleetInput is what the two-node test sends: phases of batches (each
// phase after the one before), the records never sent, the conflicting
// records.
type fleetInput struct {
	ca        *labpki.CA
	certs     [][]byte
	phases    [][]fleetBatch
	conflicts map[string]bool // codes of conflicting records
	expected  int             // records to be stored
}

// makeFleet builds the input: terminals, each with its own SAM, n records
// each; records 10 and 25 are withheld (gaps, chain breaks for good), the
// first batch of a terminal goes first (a chain start arriving after its
// successors would raise chain-restart), the rest of the first half next,
// then the second half with two conflicting contents on counters 5 and 6.
func makeFleet(t *testing.T, terminals, n int) *fleetInput {
	ca, err := labpki.NewCA("two-node SAM CA")
	require.NoError(t, err)
	in := &fleetInput{ca: ca, phases: make([][]fleetBatch, 3), conflicts: map[string]bool{}}
	for ti := range terminals {
		term := "t-" + string(rune('a'+ti))
		sam, err := ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 1, byte(ti)})
		require.NoError(t, err)
		in.certs = append(in.certs, sam.Cert)
		var prev [32]byte
		var recs [][]byte
		for i := range n {
			r := baseRecord(term)
			r.PrevHash = prev
			require.NoError(t, record.Seal(context.Background(), r, sam))
			prev, err = r.Hash()
			require.NoError(t, err)
			enc, err := r.Encode()
			require.NoError(t, err)
			if i == 9 || i == 24 {
				continue
			}
			recs = append(recs, enc)
		}
		in.expected += len(recs)
		half := (n - 1) / 2
		in.phases[0] = append(in.phases[0], fleetBatch{term, recs[:5]})
		for i := 5; i < half; i += 6 {
			in.phases[1] = append(in.phases[1], fleetBatch{term, recs[i:min(i+6, half)]})
		}
		var conflicting [][]byte
		for c := uint32(5); c <= 6; c++ {
			r := baseRecord(term)
			r.Service = "taspen"
			r.Signer, r.SAMSerial = record.SignerSAM, sam.Serial()
			r.Time = time.UnixMilli(time.Now().UnixMilli()).UTC()
			d, err := r.Digest()
			require.NoError(t, err)
			r.Counter, r.Signature = c, sam.SignAt(d, c)
			enc, err := r.Encode()
			require.NoError(t, err)
			conflicting = append(conflicting, enc)
			in.conflicts[codeOf(t, enc)] = true
		}
		rest := recs[half:]
		for i := 0; i < len(rest); i += 6 {
			b := slices.Clone(rest[i:min(i+6, len(rest))])
			if i/6 < len(conflicting) {
				b = append(b, conflicting[i/6])
			}
			in.phases[2] = append(in.phases[2], fleetBatch{term, b})
		}
	}
	return in
}

func (in *fleetInput) send(t *testing.T, svc *backoffice.Service, b fleetBatch) []wire.Result {
	res, err := svc.Ingest(context.Background(), &wire.Batch{Certificates: in.certs, Records: b.recs, SentAt: time.Now()},
		backoffice.Identity{Terminal: b.terminal})
	require.NoError(t, err)
	require.Len(t, res.Results, len(b.recs))
	return res.Results
}

// fleetState is what must not depend on how many nodes took the batches.
type fleetState struct {
	Terminals  []wire.TerminalStatus
	Alarms     []wire.Alarm
	Codes      []string
	Breaks     []string // codes still flagged chain-break
	Rows, Keys int
}

func stateOf(t *testing.T, st *backoffice.PGStore, svc *backoffice.Service, terminals int) fleetState {
	ctx := context.Background()
	var s fleetState
	for ti := range terminals {
		ts, err := svc.Terminal(ctx, "t-"+string(rune('a'+ti)))
		require.NoError(t, err)
		for _, a := range ts.Alarms {
			a.At, a.Detail, a.ID = time.Time{}, "", 0 // ids: the order raised in, which depends on the nodes' timing
			s.Alarms = append(s.Alarms, a)
		}
		ts.Alarms, ts.LastSeen, ts.ClockSkewMillis = nil, time.Time{}, 0
		s.Terminals = append(s.Terminals, *ts)
	}
	// alarms in id order: the order they were raised in, which depends on
	// the nodes' timing
	slices.SortFunc(s.Alarms, func(a, b wire.Alarm) int {
		return cmp.Or(cmp.Compare(a.TerminalID, b.TerminalID), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Counter, b.Counter))
	})
	pool := st.Pool()
	rows, err := pool.Query(ctx, "SELECT code, 'chain-break' = ANY(flags) FROM records ORDER BY code")
	require.NoError(t, err)
	for rows.Next() {
		var code string
		var broken bool
		require.NoError(t, rows.Scan(&code, &broken))
		s.Codes = append(s.Codes, code)
		if broken {
			s.Breaks = append(s.Breaks, code)
		}
	}
	require.NoError(t, rows.Err())
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM records").Scan(&s.Rows))
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM record_keys").Scan(&s.Keys))
	return s
}

// Two back-office nodes (two Services on two pools of one database) take
// the same batches at the same time and again in retries across nodes,
// phase by phase. Every record is accepted exactly once across all the
// answers and stored once; the ledgers, the chains, the terminal counters
// and the alarms (one per conflicting content) equal those of one node
// taking each batch once.
func TestTwoNodesExactlyOnce(t *testing.T) {
	const terminals, perTerminal, sends = 3, 60, 4
	in := makeFleet(t, terminals, perTerminal)

	// the reference: one node, each batch once
	ref, err := backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
	require.NoError(t, err)
	defer ref.Close()
	refSvc, err := backoffice.New(ref, backoffice.Config{CA: in.ca.Pool()})
	require.NoError(t, err)
	for _, phase := range in.phases {
		for _, b := range phase {
			in.send(t, refSvc, b)
		}
	}
	want := stateOf(t, ref, refSvc, terminals)
	require.Len(t, want.Codes, in.expected)
	require.Len(t, want.Alarms, 2*terminals, "one counter-conflict alarm per conflicting content")

	// two nodes, opened together
	dsn := pgtest.DB(t)
	stores := make([]*backoffice.PGStore, 2)
	svcs := make([]*backoffice.Service, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = backoffice.OpenPostgres(context.Background(), dsn) }()
	}
	wg.Wait()
	for i := range 2 {
		require.NoError(t, errs[i])
		defer stores[i].Close()
		svcs[i], err = backoffice.New(stores[i], backoffice.Config{CA: in.ca.Pool()})
		require.NoError(t, err)
	}
	var mu sync.Mutex
	accepted := map[string]int{}
	for _, phase := range in.phases {
		start := make(chan struct{})
		for bi, b := range phase {
			for k := range sends {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// the same batch on both nodes at once, then retried
					// on either after a random pause
					time.Sleep(time.Duration(k/2) * time.Duration(rand.IntN(20)) * time.Millisecond)
					res := in.send(t, svcs[(bi+k)%2], b)
					mu.Lock()
					defer mu.Unlock()
					for i, r := range res {
						code := codeOf(t, b.recs[i])
						if in.conflicts[code] {
							assert.Equal(t, wire.Result{Status: wire.Rejected, Reason: wire.ReasonConflict}, r)
							continue
						}
						assert.Contains(t, []wire.Status{wire.Accepted, wire.Duplicate}, r.Status, "%+v", r)
						if r.Status == wire.Accepted {
							accepted[code]++
						}
					}
				}()
			}
		}
		close(start)
		wg.Wait()
	}
	assert.Len(t, accepted, in.expected, "every record accepted")
	for code, n := range accepted {
		assert.Equal(t, 1, n, "record %s accepted %d times", code, n)
	}
	got := stateOf(t, stores[0], svcs[1], terminals)
	assert.Equal(t, in.expected, got.Rows, "stored once")
	assert.Equal(t, in.expected, got.Keys)
	assert.Equal(t, want, got)
	t.Logf("%d records of %d terminals, each batch sent %d times over two nodes: %d stored, %d alarms, %d chain breaks left",
		in.expected, terminals, sends, got.Rows, len(got.Alarms), len(got.Breaks))
}
