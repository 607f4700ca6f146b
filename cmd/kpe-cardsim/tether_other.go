//go:build !linux

package main

import (
	"errors"
	"runtime"
)

func tether(int, bool, []string) error {
	return errors.New("tether needs Linux (PR_SET_PDEATHSIG); it is not available on " + runtime.GOOS)
}
