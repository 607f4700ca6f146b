//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"kpe-agent/internal/systest"
)

// kpe-agent version prints the commit it was built from, which go build
// stamps from the git checkout, and the version and build date make build
// and the packages set with -ldflags -X.
func TestVersionPrintsCommit(t *testing.T) {
	_, err := exec.LookPath("git")
	systest.Need(t, err == nil, "git is not installed: the VCS stamp of go build cannot be checked")
	git := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
		require.NoError(t, err, "git %q", args)
		return strings.TrimSpace(string(out))
	}
	root := git(".", "rev-parse", "--show-toplevel")
	head := git(root, "rev-parse", "HEAD")
	src := root
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && !fi.IsDir() {
		// A linked worktree, whose .git is a file: cmd/go looks for a
		// .git directory and stamps nothing. Build the same commit from
		// a clone sharing the objects instead.
		src = filepath.Join(t.TempDir(), "src")
		git(root, "clone", "--quiet", "--shared", "--no-checkout", root, src)
		git(src, "checkout", "--quiet", head)
		t.Logf("%s is a linked worktree: building commit %s from a clone", root, head)
	}

	bin := filepath.Join(t.TempDir(), "kpe-agent")
	const pkg = "kpe-agent/internal/buildinfo"
	// -buildvcs=true: the environment may set -buildvcs=false in GOFLAGS,
	// and the flag on the command line wins. -trimpath shares the build
	// cache with a build in another directory.
	build := exec.Command("go", "build", "-buildvcs=true", "-trimpath", "-o", bin,
		"-ldflags", "-X "+pkg+".version=9.8.7 -X "+pkg+".buildDate=2030-01-02T03:04:05Z", "./cmd/kpe-agent")
	build.Dir = src
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	text := string(out)
	require.True(t, strings.HasPrefix(text, "kpe-agent 9.8.7\n"), text)
	require.Contains(t, text, "  commit:       "+head)
	require.Contains(t, text, "  built:        2030-01-02T03:04:05Z")
	require.Contains(t, text, "  commit time:  ")

	out, err = exec.Command(bin, "version", "--json").Output()
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(out, &v), string(out))
	require.Equal(t, "kpe-agent", v["name"])
	require.Equal(t, "9.8.7", v["version"])
	require.Equal(t, head, v["commit"])
	require.Equal(t, "2030-01-02T03:04:05Z", v["build_date"])
	require.Contains(t, v["go_version"], "go1.")
	require.Contains(t, v, "modified")
	require.Contains(t, v, "commit_time")
}
