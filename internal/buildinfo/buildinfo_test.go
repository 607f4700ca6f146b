package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "kpe-agent", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		}}

	info := fromBuildInfo(bi, "", "", "")
	if info.Version != "v1.2.3" || info.Commit != "0123456789abcdef0123456789abcdef01234567" || info.GoVersion != "go1.99.1" ||
		info.Module != "kpe-agent" || info.Modified == nil || !*info.Modified ||
		info.CommitTime == nil || !info.CommitTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("%+v", info)
	}

	// -ldflags -X: the version and date win; the commit only fills in
	// for a build Go did not stamp.
	info = fromBuildInfo(bi, "1.2.3+4.gabc", "fedcba", "2026-02-03T04:05:06Z")
	if info.Version != "1.2.3+4.gabc" || info.Commit != "0123456789abcdef0123456789abcdef01234567" || info.BuildDate != "2026-02-03T04:05:06Z" {
		t.Fatalf("%+v", info)
	}
	unstamped := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "kpe-agent", Version: "(devel)"}}
	if info = fromBuildInfo(unstamped, "", "fedcba", ""); info.Commit != "fedcba" || info.Version != Devel || info.Modified != nil {
		t.Fatalf("%+v", info)
	}

	// No build information at all (a binary built without modules).
	if info = fromBuildInfo(nil, "", "", ""); info.Version != Devel || info.GoVersion != runtime.Version() || info.Commit != "" {
		t.Fatalf("%+v", info)
	}
}

func TestWrite(t *testing.T) {
	modified := false
	ct := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b strings.Builder
	err := Info{Version: "1.0.0", Commit: "abc", Modified: &modified, CommitTime: &ct, BuildDate: "2026-01-03T00:00:00Z", GoVersion: "go1.99.1"}.Write(&b, "kpectl")
	if err != nil {
		t.Fatal(err)
	}
	want := "kpectl 1.0.0\n" +
		"  commit:       abc (clean)\n" +
		"  commit time:  2026-01-02T03:04:05Z\n" +
		"  built:        2026-01-03T00:00:00Z\n" +
		"  go:           go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := (Info{Version: Devel, GoVersion: "go1.99.1"}).Write(&b, "kpe-agent"); err != nil || b.String() != "kpe-agent (devel)\n  go:           go1.99.1 "+runtime.GOOS+"/"+runtime.GOARCH+"\n" {
		t.Errorf("%q %v", b.String(), err)
	}
}
