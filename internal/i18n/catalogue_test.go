package i18n

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestEveryMessageHasBothLanguages(t *testing.T) {
	for _, k := range keys() {
		m := catalogue[k]
		if strings.TrimSpace(m.ID) == "" {
			t.Errorf("%s: no Bahasa Indonesia text", k)
		}
		if strings.TrimSpace(m.EN) == "" {
			t.Errorf("%s: no English text", k)
		}
		if m.ID != strings.TrimSpace(m.ID) || m.EN != strings.TrimSpace(m.EN) {
			t.Errorf("%s: leading or trailing space", k)
		}
	}
}

func TestNoKeyIsDefinedTwice(t *testing.T) {
	if len(duplicates) > 0 {
		t.Errorf("keys defined in two tables: %v", duplicates)
	}
}

func TestKeysAreWellFormed(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9_-]*)+$`)
	for _, k := range keys() {
		if !re.MatchString(k) {
			t.Errorf("%q: a key is dot-separated lower-case words", k)
		}
		if !slices.Contains(families, strings.SplitN(k, ".", 2)[0]+".") {
			t.Errorf("%q: its family is not one of %v", k, families)
		}
	}
}

// verbs returns the fmt verbs of s in order, with explicit argument
// indexes, so both languages can be compared.
var verbRE = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*(\d+|\*)?(\.(\d+|\*))?[a-zA-Z%]`)

func verbs(s string) []string {
	var out []string
	for _, v := range verbRE.FindAllString(s, -1) {
		if v == "%%" {
			continue
		}
		// the verb letter and index decide the argument's use; width and
		// flags may differ between languages
		letter := v[len(v)-1:]
		idx := ""
		if i := strings.Index(v, "]"); i > 0 {
			idx = v[1 : i+1]
		}
		out = append(out, idx+letter)
	}
	return out
}

func TestBothLanguagesTakeTheSameArguments(t *testing.T) {
	for _, k := range keys() {
		m := catalogue[k]
		id, en := verbs(m.ID), verbs(m.EN)
		if !slices.Equal(id, en) {
			t.Errorf("%s: verbs differ: id %v, en %v", k, id, en)
		}
	}
}

func TestEveryFrontlineCodeSpeaksToBothAudiences(t *testing.T) {
	for _, k := range keys() {
		code, ok := strings.CutPrefix(k, "clerk.")
		if ok && !Has(Holder.Key(code)) {
			t.Errorf("%s has no card-holder wording (%s)", k, Holder.Key(code))
		}
		code, ok = strings.CutPrefix(k, "holder.")
		if ok && !Has(Clerk.Key(code)) {
			t.Errorf("%s has no clerk wording (%s)", k, Clerk.Key(code))
		}
	}
}

// families are the first parts of the keys: one per area.
var families = []string{"clerk.", "holder.", "identity.", "doctor.", "kpectl.", "staff.", "kiosk.", "loket."}

// tableFiles hold the catalogue itself; a key's use must be elsewhere.
var tableFiles = []string{"frontline.go", "identity.go", "doctor.go", "kpectl.go", "backoffice.go", "kiosk.go", "loket.go"}

// literals collects the string literals of the module's Go files (tests
// and the catalogue's tables aside) and the words of its embedded web
// pages and scripts, with where each was seen.
func literals(t *testing.T) map[string]string {
	t.Helper()
	root := moduleRoot(t)
	word := regexp.MustCompile(`[A-Za-z0-9_.-]+`)
	seen := map[string]string{}
	add := func(s, where string) {
		if _, ok := seen[s]; !ok {
			seen[s] = where
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "build" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch ext := filepath.Ext(path); {
		case ext == ".go" && !strings.HasSuffix(path, "_test.go"):
			if filepath.Dir(rel) == filepath.Join("internal", "i18n") && slices.Contains(tableFiles, d.Name()) {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					if s, err := strconv.Unquote(bl.Value); err == nil {
						add(s, fset.Position(bl.Pos()).String())
					}
				}
				return true
			})
		case ext == ".html" || ext == ".js":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, w := range word.FindAllString(string(b), -1) {
				add(w, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// TestEveryMessageIsUsed fails for an entry nothing refers to. A key is in
// use when the code holds it as a literal, or when it builds it from two
// literals: a prefix ending in "." ("clerk.", "doctor.pcsc.") and the rest
// (an error code "no-card" held by a constant, say), as Audience.Key does.
// Web pages count too: a page's table is the entries under a prefix
// (WithPrefix), and a key is used when the page names the rest.
func TestEveryMessageIsUsed(t *testing.T) {
	lits := literals(t)
	for _, k := range keys() {
		if _, ok := lits[k]; ok {
			continue
		}
		used := false
		for i := strings.IndexByte(k, '.'); i >= 0 && !used; {
			prefix, rest := k[:i+1], k[i+1:]
			_, p := lits[prefix]
			_, r := lits[rest]
			used = p && r
			j := strings.IndexByte(k[i+1:], '.')
			if j < 0 {
				break
			}
			i += j + 1
		}
		if !used {
			t.Errorf("%s: not used anywhere (remove it, or use it)", k)
		}
	}
}

// TestEveryKeyInUseExists fails for a literal that looks like a key (it
// starts with a family and names more than the family) but is not in the
// catalogue: a typo would otherwise show the key to a person. The
// configuration's own keys (agent/config: loket.enabled, a section named
// like the counter screen's family) are not catalogue keys.
func TestEveryKeyInUseExists(t *testing.T) {
	for s, where := range literals(t) {
		if strings.ContainsAny(s, " \n%/") || strings.HasSuffix(s, ".") || webFile.MatchString(s) {
			continue
		}
		if strings.Contains(filepath.ToSlash(where), "agent/config/") {
			continue // configuration keys (kiosk.idle_timeout): the configuration holds no message
		}
		for _, f := range families {
			if strings.HasPrefix(s, f) && len(s) > len(f) && !Has(s) && !isPrefixOfKey(s+".") {
				t.Errorf("%s: %q looks like a catalogue key but is not one", where, s)
			}
		}
	}
}

// webFile matches the name of a file ("kiosk.js", "kiosk.css" in the
// kiosk page, "docs/kiosk.md" in a comment of its script): a word of a
// page, not a key.
var webFile = regexp.MustCompile(`\.(js|css|html|md)$`)

func isPrefixOfKey(p string) bool {
	for k := range catalogue {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func TestTextsFormatTheirArguments(t *testing.T) {
	saved := catalogue
	t.Cleanup(func() { catalogue = saved })
	catalogue = map[string]Message{"kpectl.test": {"%d kartu di %s", "%d cards in %s"}}
	if got := English.T("kpectl.test", 2, "Jakarta"); got != "2 cards in Jakarta" {
		t.Errorf("English: %q", got)
	}
	if got := Indonesian.T("kpectl.test", 2, "Jakarta"); got != "2 kartu di Jakarta" {
		t.Errorf("Indonesian: %q", got)
	}
	if got := Lang("fr").T("kpectl.test", 2, "Jakarta"); got != "2 kartu di Jakarta" {
		t.Errorf("an unknown language must fall back to Indonesian: %q", got)
	}
	if got := Both("kpectl.test", 1, "Medan"); got != (Text{"1 kartu di Medan", "1 cards in Medan"}) {
		t.Errorf("Both: %+v", got)
	}
	if got := English.T("kpectl.missing"); got != "kpectl.missing" {
		t.Errorf("a missing key must come back as itself, not a panic: %q", got)
	}
}
