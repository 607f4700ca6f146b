//go:build unix

package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A secret its group can read is accepted only when that group is
// root's, the process's own or the agent's (packages: 0640
// root:kpe-agent); 0640 with another group (users) is refused.
func TestReadSecretGroup(t *testing.T) {
	const other, agent = 4242, 4243
	if os.Getegid() == other || os.Getegid() == agent {
		t.Skip("the test's groups are this process's")
	}
	old := agentGroupID
	agentGroupID = func() (uint32, bool) { return agent, true }
	t.Cleanup(func() { agentGroupID = old })

	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte("s3cret-token\n"), 0o600))
	require.NoError(t, os.Chmod(p, 0o640))
	_, err := ReadSecret(p)
	require.NoError(t, err, "the process's own group")

	if err := os.Chown(p, -1, other); err != nil {
		t.Skipf("cannot give the file another group (not root?): %v", err)
	}
	_, err = ReadSecret(p)
	require.ErrorIs(t, err, ErrInsecureSecret)
	require.ErrorContains(t, err, "gid 4242")
	require.ErrorContains(t, err, "chmod 600 "+p)
	require.ErrorContains(t, err, "chgrp kpe-agent "+p)
	require.NotContains(t, err.Error(), "s3cret")

	require.NoError(t, os.Chmod(p, 0o600))
	_, err = ReadSecret(p)
	require.NoError(t, err, "the group cannot read it: any group")

	require.NoError(t, os.Chmod(p, 0o640))
	for _, gid := range []int{agent, 0} {
		require.NoError(t, os.Chown(p, -1, gid))
		_, err = ReadSecret(p)
		require.NoError(t, err, "gid %d", gid)
	}
}

// The API token's readers (APIGroup, kpe-agent-api) may read the token
// and nothing else: ReadToken accepts a token 0640 in that group; every
// other secret (ReadSecret: the activation code, the KTP-el secrets, the
// NIK key, the TLS key) in that group is refused, even when it is this
// process's own group (a clerk whose primary group it is running kpectl).
func TestSecretAPIGroup(t *testing.T) {
	const api = 4244
	if os.Getegid() == api {
		t.Skip("the test's group is this process's")
	}
	oldAPI := apiGroupID
	t.Cleanup(func() { apiGroupID = oldAPI })

	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte("s3cret\n"), 0o600))
	require.NoError(t, os.Chmod(p, 0o640))

	// the process's own group is the API group: ReadSecret still refuses
	apiGroupID = func() (uint32, bool) { return uint32(os.Getegid()), true }
	_, err := ReadSecret(p)
	require.ErrorIs(t, err, ErrInsecureSecret)
	require.ErrorContains(t, err, "kpe-agent-api")
	require.ErrorContains(t, err, "chgrp kpe-agent "+p)
	require.NotContains(t, err.Error(), "s3cret")
	b, err := ReadToken(p)
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(b))

	require.NoError(t, os.Chmod(p, 0o600))
	_, err = ReadSecret(p)
	require.NoError(t, err, "the group cannot read it")

	apiGroupID = func() (uint32, bool) { return api, true }
	if err := os.Chown(p, -1, api); err != nil {
		t.Skipf("cannot give the file another group (not root?): %v", err)
	}
	require.NoError(t, os.Chmod(p, 0o640))
	_, err = ReadSecret(p)
	require.ErrorIs(t, err, ErrInsecureSecret)
	_, err = ReadToken(p)
	require.NoError(t, err, "the token in kpe-agent-api")
	require.NoError(t, os.Chmod(p, 0o660))
	_, err = ReadToken(p)
	require.ErrorIs(t, err, ErrInsecureSecret, "the group may not write the token")
	require.NoError(t, os.Chmod(p, 0o644))
	_, err = ReadToken(p)
	require.ErrorIs(t, err, ErrInsecureSecret, "nor others read it")
}
