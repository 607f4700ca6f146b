package wire

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":       0,
		"5":      5 * time.Second,
		" 7 ":    7 * time.Second,
		"-3":     0,
		"999999": 24 * time.Hour,
		"soon":   0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := RetryAfter(h, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

// The request a terminal sends: POST to the records path under the base
// URL (a trailing slash or not), the batch as gzip-compressed JSON.
func TestNewBatchRequest(t *testing.T) {
	b := &Batch{Certificates: [][]byte{{1, 2}}, Records: [][]byte{{3}, {4, 5}}, SentAt: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}
	for _, base := range []string{"https://bo.example:8443", "https://bo.example:8443/"} {
		req, err := NewBatchRequest(context.Background(), base, b)
		if err != nil {
			t.Fatal(err)
		}
		if req.Method != http.MethodPost || req.URL.String() != "https://bo.example:8443"+PathRecords {
			t.Errorf("%s %s", req.Method, req.URL)
		}
		if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("headers %v", req.Header)
		}
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		var got Batch
		if err := json.NewDecoder(zr).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != 2 || string(got.Records[1]) != "\x04\x05" || !got.SentAt.Equal(b.SentAt) || len(got.Certificates) != 1 {
			t.Errorf("batch read back: %+v", got)
		}
	}
}
