//go:build !linux && !darwin && !freebsd && !windows

package doctor

import "errors"

func diskSpace(string) (uint64, uint64, error) {
	return 0, 0, errors.New("free disk space is not measured on this platform")
}
