package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/agent/config"
)

func TestParseLevel(t *testing.T) {
	for s, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, " warn ": slog.LevelWarn, "error": slog.LevelError} {
		l, err := ParseLevel(s)
		require.NoError(t, err)
		require.Equal(t, want, l)
	}
	for _, s := range []string{"", "verbose", "warning", "trace"} {
		_, err := ParseLevel(s)
		require.ErrorContains(t, err, "want debug, info, warn or error")
	}
}

// files returns the log files in dir and their sizes.
func files(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		out[e.Name()] = info.Size()
	}
	return out
}

// TestRotationBounds writes far more than MaxSize*MaxFiles from several
// goroutines through New: the file count and sizes stay bounded, every
// line is whole JSON, and the newest lines are kept.
func TestRotationBounds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.log")
	level := new(slog.LevelVar)
	log, closer, err := New(config.Log{Level: "debug", File: p, MaxSize: 1, MaxFiles: 3}, level)
	require.NoError(t, err)
	require.Equal(t, slog.LevelDebug, level.Level())

	const writers, perWriter = 4, 8000 // ~200 bytes a line: ~6.4 MB, over twice 3 MB
	pad := strings.Repeat("x", 100)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				log.Info("tick", "g", g, "i", i, "pad", pad)
			}
		})
	}
	wg.Wait()
	log.Info("last line")
	require.NoError(t, closer.Close())

	fs := files(t, dir)
	names := make([]string, 0, len(fs))
	for n, size := range fs {
		names = append(names, n)
		require.LessOrEqual(t, size, int64(1<<20), n)
		if n != "agent.log" {
			require.Greater(t, size, int64(1<<20)-1000, "%s: rotated files are nearly full", n)
		}
	}
	sort.Strings(names)
	require.Equal(t, []string{"agent.log", "agent.log.1", "agent.log.2"}, names)

	lines := 0
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s: torn line %q", n, sc.Text())
			lines++
		}
		f.Close()
	}
	require.Greater(t, lines, 3*5000)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Contains(t, string(b), `"msg":"last line"`)

	if runtime.GOOS != "windows" {
		for n := range fs {
			info, err := os.Stat(filepath.Join(dir, n))
			require.NoError(t, err)
			require.Zero(t, info.Mode().Perm()&^0o640, "%s: %v", n, info.Mode())
		}
	}
}

func TestRotatingWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "agent.log")
	w, err := NewRotatingWriter(p, 100, 2)
	require.NoError(t, err)
	line := func(i int) []byte { return fmt.Appendf(nil, "%038d\n", i) } // 39 bytes
	for i := range 10 {
		n, err := w.Write(line(i))
		require.NoError(t, err)
		require.Equal(t, 39, n)
	}
	require.NoError(t, w.Close())
	_, err = w.Write(line(0))
	require.ErrorIs(t, err, os.ErrClosed)
	// 2 lines a file (78 bytes; a third would make 117).
	cur, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, append(line(8), line(9)...), cur)
	old, err := os.ReadFile(p + ".1")
	require.NoError(t, err)
	require.Equal(t, append(line(6), line(7)...), old)
	require.Len(t, files(t, filepath.Dir(p)), 2)

	// Reopening appends and counts what is there; a smaller max_files
	// removes the files beyond it.
	require.NoError(t, os.WriteFile(p+".5", []byte("stale"), 0o640))
	w, err = NewRotatingWriter(p, 100, 1)
	require.NoError(t, err)
	_, err = w.Write(line(10))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.Equal(t, map[string]int64{"agent.log": 39}, files(t, filepath.Dir(p)), "one file: rotation truncates")

	// A write larger than the maximum goes alone into a fresh file; the
	// oldest file goes when the files would exceed the budget (300 bytes).
	w, err = NewRotatingWriter(p, 100, 3)
	require.NoError(t, err)
	big := bytes.Repeat([]byte("y"), 250)
	_, err = w.Write(big)
	require.NoError(t, err)
	b, _ := os.ReadFile(p + ".1")
	require.Equal(t, line(10), b, "250 + 39 fit in the budget")
	_, err = w.Write(line(11))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	b, _ = os.ReadFile(p + ".1")
	require.Equal(t, big, b)
	require.NoFileExists(t, p+".2", "250 + 39 + 39 do not")
	b, _ = os.ReadFile(p)
	require.Equal(t, line(11), b)
	// Into an empty current file too (here at the start).
	require.NoError(t, os.Truncate(p, 0))
	w, err = NewRotatingWriter(p, 100, 3)
	require.NoError(t, err)
	_, err = w.Write(big[:100])
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.Equal(t, map[string]int64{"agent.log": 100}, files(t, filepath.Dir(p)), "250 + 100 do not fit")

	_, err = NewRotatingWriter(p, 0, 1)
	require.Error(t, err)
}

func TestStderr(t *testing.T) {
	log, closer, err := New(config.Log{Level: "warn"}, nil)
	require.NoError(t, err)
	require.NotNil(t, log)
	require.False(t, log.Enabled(context.Background(), slog.LevelInfo))
	require.NoError(t, closer.Close())

	_, _, err = New(config.Log{Level: "loud"}, nil)
	require.Error(t, err)
}

type person struct{ nik string }

func (p person) LogValue() slog.Value {
	return slog.GroupValue(slog.String("nik", p.nik), slog.String("role", "peserta"))
}

func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))

	log.Info("read", "NIK", "3201011234567890", "nip", "198001012005011001", "Birth_Date", "1980-01-01",
		"cardSerial", "A1B2", "reader", "ACS ACR39U 00", "uid", "04A1",
		slog.Group("card", "name", "Budi", "alamat", "Jl. Merdeka 1", "kind", "KPE"),
		"holder", person{nik: "3201011234567890"},
		"fields", map[string]any{"nama": "Budi", "service": "askes"},
		"form", map[string]string{"photo": "base64...", "code": "X7"},
		slog.Group("subject", "cn", "Budi Santoso"))
	log.With("template", "deadbeef", "terminal", "T-01").WithGroup("Subject").Info("cert", "cn", "Budi")
	log.WithGroup("session").With("address", "Jl").Info("x", slog.Group("g", slog.Group("h", "nama", "Budi")))

	out := buf.String()
	for _, secret := range []string{"3201011234567890", "198001012005011001", "1980-01-01", "A1B2", "04A1", "Budi", "Merdeka", "base64", "deadbeef", `"Jl"`} {
		require.NotContains(t, out, secret)
	}
	for _, kept := range []string{"ACS ACR39U 00", "KPE", "peserta", "askes", "X7", "T-01"} {
		require.Contains(t, out, kept)
	}
	require.Contains(t, out, `"NIK":"[redacted]"`)
	require.Contains(t, out, `"card":{"name":"[redacted]","alamat":"[redacted]","kind":"KPE"}`)
	require.Contains(t, out, `"subject":"[redacted]"`)
	require.Contains(t, out, `"Subject":{"cn":"[redacted]"}`)
	require.Contains(t, out, `"session":{"address":"[redacted]","g":{"h":{"nama":"[redacted]"}}}`)

	// Through New too.
	p := filepath.Join(t.TempDir(), "agent.log")
	l, closer, err := New(config.Log{Level: "info", File: p, MaxSize: 1, MaxFiles: 1}, nil)
	require.NoError(t, err)
	l.Info("read", "nik", "3201011234567890")
	require.NoError(t, closer.Close())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Contains(t, string(b), `"nik":"[redacted]"`)
}

func TestIsPersonal(t *testing.T) {
	for _, k := range []string{"nip", "NIK", "Name", "nama", "birth_date", "birthDate", "birth-date", "address", "alamat", "template", "photo", "subject", "card_serial", "CardSerial", "uid", "UID"} {
		require.True(t, IsPersonal(k), k)
	}
	for _, k := range []string{"reader", "terminal", "service", "code", "err", "names", "file"} {
		require.False(t, IsPersonal(k), k)
	}
}
