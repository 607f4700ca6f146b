package layout

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Raw command APDUs (composite literals of apdu.Command) may be built only
// by the protocol packages and the card profiles, which own the commands,
// and by the card lab, which plays the card side. Everything else (agent/,
// cmd/, sync/, biometric/ ...) composes the profiles' functions, so that a
// change to a profile is made in one place.

// rawCommandPackages are the packages, relative to the module, allowed to
// build command APDUs; a trailing "/..." allows a whole tree.
var rawCommandPackages = []string{
	"apdu",       // ISO/IEC 7816-4 and PC/SC part 3 commands
	"apdu/kpe",   // KPE profile
	"apdu/ktpel", // KTP-el profile
	"apdu/sam",   // SAM profile
	"apdu/sm",    // secure messaging (wraps and unwraps commands)
	"lab/...",    // the card lab: the card side
}

// apduPackage is the import path, relative to the module, of the package
// that defines Command.
const apduPackage = "apdu"

// rawCommandAllowed reports whether the package at rel (slash-separated,
// relative to the module root, "" for the root) may build commands.
func rawCommandAllowed(rel string) bool {
	for _, p := range rawCommandPackages {
		if tree, ok := strings.CutSuffix(p, "/..."); ok {
			if rel == tree || strings.HasPrefix(rel, tree+"/") {
				return true
			}
		} else if rel == p {
			return true
		}
	}
	return false
}

// moduleRoot returns the directory of the main module's go.mod and the
// module path: from `go env GOMOD`, or by walking up from the working
// directory when the go command cannot tell.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	gomod := ""
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		gomod = strings.TrimSpace(string(out))
	}
	if gomod == "" || gomod == os.DevNull {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				gomod = filepath.Join(d, "go.mod")
				break
			}
			if filepath.Dir(d) == d {
				t.Fatalf("no go.mod above %s", wd)
			}
		}
	}
	module, err := modulePath(gomod)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(gomod), module
}

// modulePath reads the module directive of a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			m := strings.TrimSpace(rest)
			if uq, err := strconv.Unquote(m); err == nil {
				m = uq
			}
			return m, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no module directive", gomod)
}

// scan is the result of checking a module tree.
type scan struct {
	violations []string            // "file:line:col: ..." outside the allowed packages
	allowed    int                 // literals found in the allowed packages
	files      map[string]struct{} // non-test Go files parsed, relative slash paths
}

// scanModule parses every non-test Go file of the module rooted at root
// (skipping testdata, vendor, hidden and underscore directories, and nested
// modules) and reports the command literals outside the allowed packages.
func scanModule(root, module string) (scan, error) {
	res := scan{files: map[string]struct{}{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p == root {
				return nil
			}
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", rel, err)
		}
		res.files[rel] = struct{}{}
		pkgDir := path.Dir(rel)
		if pkgDir == "." {
			pkgDir = ""
		}
		inAPDU := pkgDir == apduPackage
		found := commandLiterals(fset, f, path.Join(module, apduPackage), inAPDU)
		if rawCommandAllowed(pkgDir) {
			res.allowed += len(found)
			return nil
		}
		for _, pos := range found {
			res.violations = append(res.violations, fmt.Sprintf("%s:%d:%d: apdu.Command literal outside the profile and protocol packages: add a command to apdu/kpe, apdu/ktpel, apdu/sam or apdu and call it",
				rel, pos.Line, pos.Column))
		}
		return nil
	})
	return res, err
}

// commandLiterals returns the positions of the composite literals of type
// Command from the package apduPath in f (inAPDU: f belongs to that
// package), whatever name the package is imported under (also a dot
// import), including literals whose type is elided inside a slice, array
// or map of commands, and type declarations that rename or alias Command
// (a way around the rule).
func commandLiterals(fset *token.FileSet, f *ast.File, apduPath string, inAPDU bool) []token.Position {
	names := map[string]bool{} // local names of the apdu package
	dot := inAPDU
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || p != apduPath {
			continue
		}
		switch {
		case imp.Name == nil:
			names[path.Base(p)] = true
		case imp.Name.Name == ".":
			dot = true
		case imp.Name.Name != "_":
			names[imp.Name.Name] = true
		}
	}
	isCommand := func(e ast.Expr) bool {
		switch x := ast.Unparen(e).(type) {
		case *ast.SelectorExpr:
			id, ok := x.X.(*ast.Ident)
			return ok && names[id.Name] && x.Sel.Name == "Command"
		case *ast.Ident:
			return dot && x.Name == "Command"
		}
		return false
	}
	// elided returns the types that elements and keys of a composite
	// literal of type e may leave out (the &T of a *T too); nil when
	// unknown or not a container.
	elided := func(e ast.Expr) (key, elem ast.Expr) {
		deref := func(e ast.Expr) ast.Expr {
			if s, ok := e.(*ast.StarExpr); ok {
				return s.X
			}
			return e
		}
		switch x := ast.Unparen(e).(type) {
		case *ast.ArrayType:
			return nil, deref(x.Elt)
		case *ast.MapType:
			return deref(x.Key), deref(x.Value)
		}
		return nil, nil
	}
	var out []token.Position
	// walk inspects n; typ is the type an untyped composite literal at
	// the top of n has (from its enclosing literal), or nil.
	var walk func(n ast.Node, typ ast.Expr)
	walk = func(n ast.Node, typ ast.Expr) {
		ast.Inspect(n, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.TypeSpec:
				if isCommand(x.Type) {
					out = append(out, fset.Position(x.Pos()))
				}
			case *ast.CompositeLit:
				t := x.Type
				if t == nil {
					t = typ
				} else {
					walk(x.Type, nil)
				}
				if t != nil && isCommand(t) {
					out = append(out, fset.Position(x.Pos()))
				}
				var key, elem ast.Expr
				if t != nil {
					key, elem = elided(t)
				}
				for _, el := range x.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						walk(kv.Key, key)
						el = kv.Value
					}
					walk(el, elem)
				}
				return false
			}
			typ = nil // only the top node may be an elided literal
			return true
		})
	}
	walk(f, nil)
	return out
}

// TestRawCommandsOnlyInProfilePackages enforces the rule on the module.
func TestRawCommandsOnlyInProfilePackages(t *testing.T) {
	root, module := moduleRoot(t)
	res, err := scanModule(root, module)
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have seen the code it guards, and the detector must
	// see the profiles' own commands: a scan that finds nothing proves
	// nothing.
	for _, f := range []string{"agent/cards/cards.go", "agent/cards/finger.go", "apdu/kpe/commands.go", "apdu/sam/commands.go"} {
		if _, ok := res.files[f]; !ok {
			t.Errorf("the scan of %s did not parse %s", root, f)
		}
	}
	if res.allowed == 0 {
		t.Errorf("no apdu.Command literal found in the profile and protocol packages: the detector is broken")
	}
	for _, v := range res.violations {
		t.Error(v)
	}
}

// The detector on small files: each form of a raw command it must catch,
// and what it must leave alone.
func TestCommandLiterals(t *testing.T) {
	const apduPath = "example.com/m/apdu"
	cases := []struct {
		name   string
		src    string
		inAPDU bool
		want   []int // lines of the findings
	}{
		{"plain", `package x
import "example.com/m/apdu"
var c = apdu.Command{INS: 0xA4}
`, false, []int{3}},
		{"pointer and nested", `package x
import "example.com/m/apdu"
func f() any {
	return struct{ C *apdu.Command }{C: &apdu.Command{}}
}
`, false, []int{4}},
		{"renamed import", `package x
import iso "example.com/m/apdu"
var c = iso.Command{}
`, false, []int{3}},
		{"dot import", `package x
import . "example.com/m/apdu"
var c = Command{}
`, false, []int{3}},
		{"elided in slice, map and nested slice", `package x
import "example.com/m/apdu"
var s = []apdu.Command{{INS: 1}, {INS: 2}}
var p = []*apdu.Command{{INS: 3}}
var m = map[string]apdu.Command{"a": {INS: 4}}
var n = [][]apdu.Command{{{INS: 5}}, {}}
var b = []struct{ C []byte }{{C: []byte{1}}}
`, false, []int{3, 3, 4, 5, 6}},
		{"alias", `package x
import "example.com/m/apdu"
type cmd = apdu.Command
var c = cmd{}
`, false, []int{3}},
		{"inside the apdu package", `package apdu
type Command struct{ INS byte }
var c = Command{INS: 1}
`, true, []int{3}},
		{"other package's Command", `package x
import "example.com/m/other"
type Command struct{}
var a, b = other.Command{}, Command{}
`, false, nil},
		{"zero value and conversion are no literals", `package x
import "example.com/m/apdu"
var c apdu.Command
var d = apdu.Command(c)
func f(x apdu.Command) apdu.Command { return x }
`, false, nil},
		{"blank import", `package x
import _ "example.com/m/apdu"
type Command struct{}
var c = Command{}
`, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", tc.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, p := range commandLiterals(fset, f, apduPath, tc.inAPDU) {
				got = append(got, p.Line)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("findings on lines %v, want %v", got, tc.want)
			}
		})
	}
}

// The whole check on a small module: a raw command in agent/cards is
// reported with its file and line; the same in a profile package, in the
// lab or in a test file is not.
func TestScanModuleReportsFileAndLine(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.26\n")
	write("apdu/command.go", "package apdu\n\ntype Command struct{ INS byte }\n\nvar Select = Command{INS: 0xA4}\n")
	raw := "package p\n\nimport \"example.com/m/apdu\"\n\nvar c = apdu.Command{INS: 0xA4}\n"
	write("agent/cards/cards.go", raw)
	write("agent/cards/cards_test.go", raw)
	write("apdu/kpe/kpe.go", raw)
	write("lab/cardsim/kpeapp/applet.go", raw)
	write("agent/cards/testdata/x.go", raw)
	write("nested/go.mod", "module example.com/n\n")
	write("nested/n.go", raw)

	gomod := filepath.Join(root, "go.mod")
	module, err := modulePath(gomod)
	if err != nil || module != "example.com/m" {
		t.Fatalf("module path %q, %v", module, err)
	}
	res, err := scanModule(root, module)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.violations) != 1 || !strings.HasPrefix(res.violations[0], "agent/cards/cards.go:5:9: ") {
		t.Fatalf("violations %q, want one at agent/cards/cards.go:5:9", res.violations)
	}
	if res.allowed != 3 {
		t.Errorf("%d literals in allowed packages, want 3 (apdu, apdu/kpe, lab)", res.allowed)
	}
}

// A broken file is an error naming it, not a silent pass.
func TestScanModuleParseError(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bad.go"), []byte("package p\nfunc {"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := scanModule(root, "example.com/m")
	if err == nil || !strings.Contains(err.Error(), "bad.go") {
		t.Fatalf("error %v, want one naming bad.go", err)
	}
	if _, err := modulePath(filepath.Join(root, "missing.mod")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing go.mod: %v", err)
	}
}
