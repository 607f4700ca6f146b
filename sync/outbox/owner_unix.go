//go:build unix

package outbox

import (
	"os"
	"syscall"
)

// sameOwner gives the file at path the owner and group of fi: kpectl runs
// as root, and the compacted outbox must stay the agent's.
func sameOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Chown(path, int(st.Uid), int(st.Gid))
}
