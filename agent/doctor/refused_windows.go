//go:build windows

package doctor

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

func isRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}
