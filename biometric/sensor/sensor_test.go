package sensor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/lab/synth"
)

// standIn writes a small capture program that behaves like a vendor tool.
func standIn(t *testing.T, body string) []string {
	dir := t.TempDir()
	tmpl := synth.NewFinger(1, 1).Impression(synth.ParamsFor(synth.Easy), 1, 1, 2)
	b, err := tmpl.Encode()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "finger.iso"), b, 0o600))
	script := filepath.Join(dir, "capture.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ncd "+dir+"\n"+body+"\n"), 0o700))
	return []string{"/bin/sh", script}
}

func TestExternalSensor(t *testing.T) {
	ctx := context.Background()
	r, err := sensor.External{Command: standIn(t, "echo 'sensor warming up' >&2; cat finger.iso")}.Capture(ctx)
	require.NoError(t, err)
	require.Equal(t, biometric.FormatISO, r.Format)
	require.NotEmpty(t, r.Minutiae())

	t0 := time.Now()
	_, err = sensor.External{Command: standIn(t, "sleep 30 & sleep 30; cat finger.iso"), Timeout: 300 * time.Millisecond}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrTimeout)
	require.Less(t, time.Since(t0), 5*time.Second, "the program and its children are killed at the deadline")

	_, err = sensor.External{Command: standIn(t, "echo 'no finger placed' >&2; exit 2")}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrNoFinger)
	_, err = sensor.External{Command: standIn(t, "echo 'USB device not found' >&2; exit 3")}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrDevice)
	require.ErrorContains(t, err, "USB device not found")

	_, err = sensor.External{Command: standIn(t, "echo this is not a template")}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrBadOutput)
	require.ErrorIs(t, err, biometric.ErrFormat)
	_, err = sensor.External{Command: standIn(t, "head -c 200000 /dev/zero")}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrBadOutput)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = sensor.External{Command: standIn(t, "cat finger.iso")}.Capture(cctx)
	require.Error(t, err)
	_, err = sensor.External{}.Capture(ctx)
	require.ErrorIs(t, err, sensor.ErrDevice)
}
