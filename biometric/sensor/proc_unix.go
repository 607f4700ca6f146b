//go:build unix

package sensor

import (
	"os/exec"
	"syscall"
)

// The capture program runs in its own process group, so a timeout kills
// whatever it started as well.
func setProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
