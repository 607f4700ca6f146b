package daemon

import "golang.org/x/sys/unix"

// clockSynced reports whether the kernel says the clock is synchronised
// (NTP has cleared STA_UNSYNC).
func clockSynced() bool {
	var t unix.Timex
	state, err := unix.Adjtimex(&t)
	return err == nil && state != unix.TIME_ERROR && t.Status&unix.STA_UNSYNC == 0
}
