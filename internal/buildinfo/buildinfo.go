// Package buildinfo says which build of kpe-agent is running: the version,
// the commit it was built from, when, and with which Go. Every binary's
// `version` command, the agent's health answer and its kpe_build_info
// metric read it here.
//
// The commit, its time and whether the tree was modified come from the Go
// toolchain's VCS stamp (runtime/debug.ReadBuildInfo; go build adds it in
// a git checkout unless -buildvcs=false). The release version and the
// build date are set by make build and installer/package.sh:
//
//	go build -ldflags "-X kpe-agent/internal/buildinfo.version=1.2.3 \
//	    -X kpe-agent/internal/buildinfo.buildDate=2025-01-02T03:04:05Z \
//	    -X kpe-agent/internal/buildinfo.commit=$(git rev-parse HEAD)"
//
// The commit set with -X is used only when the toolchain stamped none (it
// cannot in a linked git worktree, whose .git is a file, nor when the
// environment sets -buildvcs=false).
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// Set with -ldflags -X (see the package comment); empty by default.
var (
	version   string
	buildDate string
	commit    string
)

// Devel is the version of a build that was given none: Go's own word for
// a main module built from its source tree.
const Devel = "(devel)"

// Info describes the running binary. Fields the build did not record are
// empty (zero).
type Info struct {
	// Version is the release version set at build time, else the main
	// module's version as Go recorded it (a pseudo-version when built from
	// a tagged checkout or with go install), else Devel.
	Version string `json:"version"`
	// Commit is the full VCS revision (vcs.revision).
	Commit string `json:"commit,omitempty"`
	// CommitTime is the commit's time (vcs.time).
	CommitTime *time.Time `json:"commit_time,omitempty"`
	// Modified: the working tree had uncommitted changes (vcs.modified).
	// Nil when unknown.
	Modified *bool `json:"modified,omitempty"`
	// BuildDate is the build time set at build time, as given (RFC 3339).
	BuildDate string `json:"build_date,omitempty"`
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string `json:"go_version"`
	// Module is the main module's path ("kpe-agent").
	Module string `json:"module,omitempty"`
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version, commit, buildDate)
}

// fromBuildInfo merges Go's record (bi may be nil) with the values set by
// -ldflags -X.
func fromBuildInfo(bi *debug.BuildInfo, ldVersion, ldCommit, ldDate string) Info {
	info := Info{Version: ldVersion, BuildDate: ldDate, GoVersion: runtime.Version()}
	if bi != nil {
		info.Module = bi.Main.Path
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		if info.Version == "" && bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					info.CommitTime = &t
				}
			case "vcs.modified":
				if b, err := strconv.ParseBool(s.Value); err == nil {
					info.Modified = &b
				}
			}
		}
	}
	if info.Commit == "" {
		info.Commit = ldCommit
	}
	if info.Version == "" {
		info.Version = Devel
	}
	return info
}

// Write prints info for a person: "NAME VERSION" on the first line, then
// one line per known field.
func (info Info) Write(w io.Writer, name string) error {
	lines := fmt.Sprintf("%s %s\n", name, info.Version)
	if info.Commit != "" {
		c := info.Commit
		switch {
		case info.Modified == nil:
		case *info.Modified:
			c += " (modified)"
		default:
			c += " (clean)"
		}
		lines += fmt.Sprintf("  commit:       %s\n", c)
	}
	if info.CommitTime != nil {
		lines += fmt.Sprintf("  commit time:  %s\n", info.CommitTime.UTC().Format(time.RFC3339))
	}
	if info.BuildDate != "" {
		lines += fmt.Sprintf("  built:        %s\n", info.BuildDate)
	}
	lines += fmt.Sprintf("  go:           %s %s/%s\n", info.GoVersion, runtime.GOOS, runtime.GOARCH)
	_, err := io.WriteString(w, lines)
	return err
}
