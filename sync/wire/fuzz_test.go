package wire_test

import (
	"encoding/json"
	"errors"
	"testing"

	"kpe-agent/sync/wire"
)

// A batch answer from the network: any bytes give a result that covers
// the batch, or ErrResponse; never a panic.
func FuzzDecodeBatchResult(f *testing.F) {
	f.Add([]byte(`{"results":[{"status":"accepted","code":"000G-40R4-0M30-E20X"}],"server_time":"2026-11-23T00:00:00Z"}`), 1)
	f.Add([]byte(`{"results":[{"status":"rejected"}]}`), 1)
	f.Add([]byte(`{"results":null}`), 0)
	f.Add([]byte(`<html>502 Bad Gateway</html>`), 3)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 2000 {
			return
		}
		br, err := wire.DecodeBatchResult(b, n)
		if err != nil {
			if !errors.Is(err, wire.ErrResponse) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(br.Results) != n {
			t.Fatalf("%d results for %d", len(br.Results), n)
		}
		for _, r := range br.Results {
			if r.Status == wire.Rejected && r.Reason == "" {
				t.Fatal("rejected without reason")
			}
		}
		if _, err := json.Marshal(br); err != nil {
			t.Fatal(err)
		}
	})
}
