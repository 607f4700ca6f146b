package layout

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outsideRefs are references to documents that are not in the repository:
// the project's background lives in docs/background.md and its test policy
// in docs/testing.md. The patterns are assembled so that this file does not
// match them itself.
var outsideRefs = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bdomain` + `\.md\b`), "a domain brief outside the repository (docs/background.md)"},
	{regexp.MustCompile(`(?i)\bDEVELOPERS` + `\.md\b`), "a developers' guide outside the repository (docs/testing.md)"},
	{regexp.MustCompile(`\.\./` + `shared\b`), "a folder beside the repository"},
	{regexp.MustCompile(`(?i)\bseeds` + `/`), "the seed documents outside the repository (docs/background.md)"},
	{regexp.MustCompile(`(?i)\bseeds? ` + `0[0-9]{2}\b`), "a seed document by number (docs/background.md)"},
}

// repoRoot is the top of the git work tree holding this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v (the test needs git and the repository)", err)
	}
	return strings.TrimSpace(string(out))
}

// trackedFiles lists the files git tracks, relative to root.
func trackedFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if name != "" {
			files = append(files, name)
		}
	}
	return files
}

// isText says whether b looks like text: no NUL byte in its first 8 KiB
// (git's own test).
func isText(b []byte) bool {
	return !bytes.Contains(b[:min(len(b), 8<<10)], []byte{0})
}

// findOutsideRefs reports each line of text that refers to an outside
// document, as "name:line: what: the line".
func findOutsideRefs(name string, text []byte) []string {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), len(text)+1)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for _, r := range outsideRefs {
			if r.re.MatchString(line) {
				found = append(found, name+":"+strconv.Itoa(n)+": "+r.what+": "+strings.TrimSpace(line))
			}
		}
	}
	return found
}

// TestNoOutsideReferences fails when a tracked text file refers to a
// document outside the repository: a reader of the repository alone could
// not follow the reference.
func TestNoOutsideReferences(t *testing.T) {
	root := repoRoot(t)
	files := trackedFiles(t, root)
	if len(files) < 50 {
		t.Fatalf("git ls-files lists %d files: not the repository?", len(files))
	}
	scanned := 0
	for _, name := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findOutsideRefs(name+" -> "+target, []byte(target)) {
				t.Error(f)
			}
			continue // the target, when tracked, is scanned itself
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !isText(b) {
			continue
		}
		scanned++
		for _, f := range findOutsideRefs(name, b) {
			t.Error(f)
		}
	}
	if scanned == 0 {
		t.Fatal("no text file was scanned")
	}
}

// TestFindOutsideRefs checks the patterns on lines that must and must not
// match.
func TestFindOutsideRefs(t *testing.T) {
	bad := []string{
		"// identifiers consistent (domain" + ".md §3)",
		"see ../../DEVELOPERS" + ".md",
		"read ../" + "shared" + "/docs/" + "style" + ".md",
		"the text in seeds" + "/003.txt",
		"(Seed " + "003, Pasal 4)",
	}
	for i, line := range bad {
		got := findOutsideRefs("f.go", []byte("package x\n"+line+"\n"))
		if len(got) != 1 || !strings.HasPrefix(got[0], "f.go:2: ") {
			t.Errorf("bad line %d %q: found %q, want one finding at f.go:2", i, line, got)
		}
	}
	good := []string{
		"identifiers consistent (docs/background.md §3)",
		"maindomain" + ".mdx and subdomain_md",
		"seed := fs.Uint64(\"seed\", 1, \"seed\")",
		"the fuzz seed corpus in testdata/fuzz",
		"a seed of 7 gives the same set",
		"../" + "sharedlib is not the shared folder",
	}
	for _, line := range good {
		if got := findOutsideRefs("f.go", []byte(line)); len(got) != 0 {
			t.Errorf("good line %q: found %q", line, got)
		}
	}
	if isText([]byte("PNG\x00\x01")) || !isText([]byte("plain text\n")) {
		t.Error("isText does not tell binary from text")
	}
}
