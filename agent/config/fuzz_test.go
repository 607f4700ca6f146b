package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzLoad: any file content gives a Config or an error, never a panic,
// and every problem is an ErrInvalid.
func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("../../configs/agent.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("terminal: {id: T, site: S}\nservices: 5\nsync: {interval: abc, urll: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load(Source{}, "/etc/kpe-agent/agent.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("not ErrInvalid: %v", err)
			}
			if c != nil {
				t.Fatal("a Config with an error")
			}
			return
		}
		if c.Terminal.ID == "" || len(c.Services) == 0 {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}
