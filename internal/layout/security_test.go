package layout

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// threatRow is a row of a threat table in docs/security.md: its first
	// cell is the threat's id (C1, L12, N3, S2 ...).
	threatRow = regexp.MustCompile(`^\|\s*([A-Z][0-9]+)\s*\|`)
	// testLink is a link to a test: [TestName](../path/to/file_test.go).
	testLink = regexp.MustCompile(`\[((?:Test|Fuzz)[A-Za-z0-9_]+)\]\((\.\./[^)\s]+_test\.go)\)`)
)

// Every threat in docs/security.md names the tests that show its
// mitigation, and each of those tests exists where the row says it is.
func TestSecurityRowsLinkTests(t *testing.T) {
	root := repoRoot(t)
	doc := filepath.Join(root, "docs", "security.md")
	f, err := os.Open(doc)
	if err != nil {
		t.Fatalf("docs/security.md: %v", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	rows := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := threatRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows++
		id := m[1]
		if seen[id] {
			t.Errorf("docs/security.md:%d: threat %s appears twice", n, id)
		}
		seen[id] = true
		cells := strings.Split(strings.Trim(line, "| "), "|")
		last := cells[len(cells)-1]
		links := testLink.FindAllStringSubmatch(last, -1)
		if len(links) == 0 {
			t.Errorf("docs/security.md:%d: threat %s links no test in its last cell", n, id)
			continue
		}
		for _, l := range links {
			name, rel := l[1], l[2]
			src, err := os.ReadFile(filepath.Join(root, "docs", filepath.FromSlash(rel)))
			if err != nil {
				t.Errorf("docs/security.md:%d: threat %s links %s in %s: %v", n, id, name, rel, err)
				continue
			}
			if !regexp.MustCompile(`(?m)^func ` + name + `\(`).Match(src) {
				t.Errorf("docs/security.md:%d: threat %s links %s, which %s does not define", n, id, name, rel)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 10 {
		t.Errorf("docs/security.md has %d threat rows; the tables were not found", rows)
	}
}
