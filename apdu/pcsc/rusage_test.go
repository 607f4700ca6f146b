package pcsc_test

import (
	"syscall"
	"time"
)

type rusage struct{ syscall.Rusage }

func getrusage(r *rusage) { _ = syscall.Getrusage(syscall.RUSAGE_SELF, &r.Rusage) }

func (r *rusage) cpu() time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
