//go:build linux || darwin || freebsd

package doctor

import "golang.org/x/sys/unix"

// diskSpace returns the bytes available to an unprivileged user and the
// file system's size at dir.
func diskSpace(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, nil
}
