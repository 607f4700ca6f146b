package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"kpe-agent/apdu/sam"
)

// ErrInsecureSecret is returned by ReadSecret for a secret file others
// may read or write.
var ErrInsecureSecret = errors.New("secret file readable or writable by others")

// maxSecretSize bounds a secret file.
const maxSecretSize = 64 << 10

// AgentGroup is the group the Linux packages create for the agent: they
// install the service's secrets 0640 root:kpe-agent. No one but the
// service account belongs to it.
const AgentGroup = "kpe-agent"

// APIGroup is the group of the local API token's readers (frontline
// applications, a clerk's kpectl): the packages install the token 0640
// root:kpe-agent-api. Its members may read the token and nothing else:
// ReadSecret refuses any other secret its group can read.
const APIGroup = "kpe-agent-api"

// MinPseudonymKeyLen is the shortest key ReadPseudonymKey accepts: the
// SAM's own minimum.
const MinPseudonymKeyLen = sam.MinPseudonymKeyLen

// ErrShortKey is returned by ReadPseudonymKey for a key file shorter than
// MinPseudonymKeyLen bytes.
var ErrShortKey = fmt.Errorf("key shorter than %d bytes", MinPseudonymKeyLen)

// ReadSecret reads a secret file of the service (the SAM activation
// code, the KTP-el secrets, the NIK key, the TLS key): its content with
// surrounding white space trimmed.
//
// It refuses a file that is not a regular file, that others (not owner,
// not group) can read, write or execute, or that its group can write:
// mode 0600, 0400, 0640 or 0440 are fine (packages install secrets 0640
// root:kpe-agent). A file its group can read must belong to a group
// trusted with it: root's (gid 0), this process's own (effective) group
// or AgentGroup, and never APIGroup (the token's readers), even when that
// is this process's group; 0640 with a group such as users is refused.
// The checks are skipped on Windows, where file modes do not describe
// access (ACLs do: the installer restricts the secrets folder). An empty
// secret is an error. The content never appears in an error.
func ReadSecret(path string) ([]byte, error) { return readSecret(path, false) }

// ReadToken reads the local API's token file (api.token_file) as
// ReadSecret does, except that its group may also be APIGroup: 0640
// root:kpe-agent-api is how the packages install it.
func ReadToken(path string) ([]byte, error) { return readSecret(path, true) }

// ReadPseudonymKey reads the KTP-el pseudonym fallback key
// (sam.nik_key_file with ktpel.pseudonym: file) as ReadSecret does, and
// refuses one shorter than MinPseudonymKeyLen bytes with ErrShortKey.
func ReadPseudonymKey(path string) ([]byte, error) {
	b, err := ReadSecret(path)
	if err != nil {
		return nil, err
	}
	if len(b) < MinPseudonymKeyLen {
		n := len(b)
		clear(b)
		return nil, fmt.Errorf("secret %s: %d bytes: %w; write a random key, e.g. head -c 32 /dev/urandom | base64 >%s (better: ktpel.pseudonym: sam)",
			path, n, ErrShortKey, path)
	}
	return b, nil
}

func readSecret(path string, token bool) ([]byte, error) {
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
			gid, ok := fileGroup(info)
			isAPI := ok && apiGroup(gid)
			switch {
			case isAPI && token:
			case isAPI:
				return nil, fmt.Errorf("secret %s: mode %04o: its group %s is %s, the API token's readers, and they may read only the token: %w; run chgrp %s %s (or chmod 600 %s)",
					path, perm, groupName(gid), APIGroup, ErrInsecureSecret, AgentGroup, path, path)
			case ok && !trustedGroup(gid):
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
