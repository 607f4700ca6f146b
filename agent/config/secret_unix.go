//go:build unix

package config

import (
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// fileGroup is the group owning a file.
func fileGroup(info fs.FileInfo) (uint32, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint32(st.Gid), true
}

// agentGroupID looks AgentGroup up (tests replace it).
var agentGroupID = func() (uint32, bool) {
	g, err := user.LookupGroup(AgentGroup)
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(id), err == nil
}

// apiGroupID looks APIGroup up (tests replace it).
var apiGroupID = func() (uint32, bool) {
	g, err := user.LookupGroup(APIGroup)
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(id), err == nil
}

// apiGroup reports whether gid is APIGroup.
func apiGroup(gid uint32) bool {
	id, ok := apiGroupID()
	return ok && id == gid
}

// trustedGroup reports whether members of gid may read a secret: root's
// group, this process's effective group (the agent's, when it runs as
// the kpe-agent account) and AgentGroup (for check-config or kpectl run
// as root or as a member of that group).
func trustedGroup(gid uint32) bool {
	if gid == 0 || int64(gid) == int64(os.Getegid()) {
		return true
	}
	id, ok := agentGroupID()
	return ok && id == gid
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name + " (gid " + id + ")"
	}
	return "gid " + id
}
