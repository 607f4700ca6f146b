// Package sensor captures live fingerprints as minutiae templates.
//
// A Sensor returns one capture per call, honouring the context's
// cancellation and deadline. Two implementations exist:
//
//   - External runs a configured vendor capture program (the way vendor
//     SDKs such as DigitalPersona/HID, SecuGen, Futronic or Suprema are
//     integrated) and reads an ISO/IEC 19794-2 or ANSI INCITS 378 template
//     from its standard output (contract in docs/fingerprint-sensors.md);
//   - Lab asks the card lab's control channel for a capture of the
//     virtual finger placed on a slot's sensor.
//
// Captures are biometric data: they are returned in memory only, never
// written or logged here, and the caller wipes them after use.
package sensor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"kpe-agent/biometric"
)

// Sensor captures a fingerprint.
type Sensor interface {
	Capture(ctx context.Context) (*biometric.Record, error)
}

// Errors. Every failure of a sensor matches ErrSensor.
var (
	ErrSensor    = errors.New("sensor: capture failed")
	ErrTimeout   = fmt.Errorf("%w: no capture before the deadline", ErrSensor)
	ErrNoFinger  = fmt.Errorf("%w: no finger on the sensor", ErrSensor)
	ErrBadOutput = fmt.Errorf("%w: the capture is not a minutiae template", ErrSensor)
	ErrDevice    = fmt.Errorf("%w: sensor device error", ErrSensor)
)

// Exit codes of the external capture program (docs/fingerprint-sensors.md).
const (
	ExitOK       = 0
	ExitNoFinger = 2 // no finger placed in time / finger lifted
	ExitDevice   = 3 // device missing or failed
)

// maxTemplate bounds what a capture program may write.
const maxTemplate = 64 << 10

// External runs Command (no shell) for each capture.
type External struct {
	Command []string
	Timeout time.Duration // per capture, default 20 s
	Env     []string      // extra environment, KEY=VALUE
}

// Capture implements Sensor.
func (e External) Capture(ctx context.Context) (*biometric.Record, error) {
	if len(e.Command) == 0 {
		return nil, fmt.Errorf("%w: no capture command configured", ErrDevice)
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.Env = append(cmd.Environ(), e.Env...)
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 2 * time.Second
	var stdout limitedBuffer
	var stderr limitedBuffer
	stdout.max, stderr.max = maxTemplate, 2048
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	defer clear(stdout.b.Bytes())
	msg := strings.TrimSpace(stderr.b.String())
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("%w (%v)", ErrTimeout, timeout)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case ExitNoFinger:
			return nil, fmt.Errorf("%w: %s", ErrNoFinger, msg)
		default:
			return nil, fmt.Errorf("%w: %s exited with %d: %s", ErrDevice, e.Command[0], ee.ExitCode(), msg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	if stdout.over {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadOutput, maxTemplate)
	}
	r, err := biometric.Parse(stdout.b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOutput, err)
	}
	return r, nil
}

type limitedBuffer struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); len(p) > room {
		l.over = true
		l.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.b.Write(p)
}

// Lab captures from the card lab's sensor of one slot (the virtual finger
// placed through the lab's control channel).
type Lab struct {
	Control string // e.g. http://127.0.0.1:35990
	Slot    int
	Client  *http.Client
}

// Capture implements Sensor.
func (l Lab) Capture(ctx context.Context) (*biometric.Record, error) {
	c := l.Client
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/slots/%d/capture", strings.TrimRight(l.Control, "/"), l.Slot), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, ErrTimeout
		}
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTemplate+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDevice, err)
	}
	defer clear(b)
	switch {
	case resp.StatusCode == http.StatusConflict:
		return nil, ErrNoFinger
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: lab answered %s", ErrDevice, resp.Status)
	case len(b) > maxTemplate:
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadOutput, maxTemplate)
	}
	r, err := biometric.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOutput, err)
	}
	return r, nil
}
