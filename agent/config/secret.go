package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// ErrInsecureSecret is returned by ReadSecret for a secret file others
// may read or write.
var ErrInsecureSecret = errors.New("secret file readable or writable by others")

// maxSecretSize bounds a secret file.
const maxSecretSize = 64 << 10

// AgentGroup is the group the Linux packages create for the agent: they
// install secrets 0640 root:kpe-agent.
const AgentGroup = "kpe-agent"

// ReadSecret reads a secret file (the API token, the SAM activation
// code): its content with surrounding white space trimmed.
//
// It refuses a file that is not a regular file, that others (not owner,
// not group) can read, write or execute, or that its group can write:
// mode 0600, 0400, 0640 or 0440 are fine (packages install secrets 0640
// root:kpe-agent). A file its group can read must belong to a group
// trusted with it: root's (gid 0), this process's own (effective) group
// or AgentGroup; 0640 with a group such as users is refused. The checks
// are skipped on Windows, where file modes do not describe access (ACLs
// do: the installer restricts the secrets folder). An empty secret is an
// error. The content never appears in an error.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("secret %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" {
		if perm := info.Mode().Perm(); perm&0o027 != 0 {
			who := "others can access it"
			if perm&0o007 == 0 {
				who = "its group can write it"
			}
			return nil, fmt.Errorf("secret %s: mode %04o: %s: %w; run chmod 600 %s (or 640 with a group of the agent's)",
				path, perm, who, ErrInsecureSecret, path)
		}
		if perm := info.Mode().Perm(); perm&0o040 != 0 {
			if gid, ok := fileGroup(info); ok && !trustedGroup(gid) {
				return nil, fmt.Errorf("secret %s: mode %04o: its group %s can read it, and that is not the agent's group: %w; run chmod 600 %s or chgrp %s %s",
					path, perm, groupName(gid), ErrInsecureSecret, path, AgentGroup, path)
			}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if len(data) > maxSecretSize {
		return nil, fmt.Errorf("secret %s: larger than %d bytes", path, maxSecretSize)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("secret %s: empty", path)
	}
	return data, nil
}
