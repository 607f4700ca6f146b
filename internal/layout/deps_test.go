package layout

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The shipped binaries (the .deb, the .rpm and the Windows zip hold
// kpe-agent and kpectl; kpe-backoffice runs at the back office) must not
// link the card lab: no kpe-agent/lab/... package among their
// dependencies, on Linux or Windows. Tests may import the lab. Nor do they
// link the browser-test harness (internal/browsertest, chromedp).
func TestShippedBinariesDoNotLinkTheLab(t *testing.T) {
	for _, goos := range []string{"linux", "windows"} {
		for _, bin := range []string{"kpe-agent/cmd/kpe-agent", "kpe-agent/cmd/kpectl", "kpe-agent/cmd/kpe-backoffice"} {
			t.Run(goos+"/"+bin, func(t *testing.T) {
				graph := deps(t, goos, bin)
				for _, pkg := range labPackages(graph) {
					t.Errorf("%s (GOOS=%s) links the card lab: %s", bin, goos, strings.Join(chain(graph, bin, pkg), " → "))
				}
				// nor the browser-test harness and the browser driver
				for pkg := range graph {
					if pkg == "kpe-agent/internal/browsertest" || strings.HasPrefix(pkg, "github.com/chromedp/") {
						t.Errorf("%s (GOOS=%s) links browser-test support: %s", bin, goos, strings.Join(chain(graph, bin, pkg), " → "))
					}
				}
			})
		}
	}
}

// The check finds the lab where it is: kpe-cardsim links it, and the
// chain leads there.
func TestLabCheckSeesTheLab(t *testing.T) {
	const bin = "kpe-agent/cmd/kpe-cardsim"
	graph := deps(t, "linux", bin)
	found := labPackages(graph)
	if !slices.Contains(found, "kpe-agent/lab/cardsim") {
		t.Fatalf("the lab packages of %s are not found: %q", bin, found)
	}
	if c := chain(graph, bin, "kpe-agent/lab/synth"); len(c) != 2 || c[0] != bin || c[1] != "kpe-agent/lab/synth" {
		t.Errorf("chain to lab/synth: %q", c)
	}
}

// deps is the import graph of pkg and its dependencies for goos/amd64:
// each package's imports (go list -deps).
func deps(t *testing.T, goos, pkg string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, pkg)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s (GOOS=%s): %v\n%s", pkg, goos, err, stderr)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 {
			graph[fields[0]] = fields[1:]
		}
	}
	if _, ok := graph[pkg]; !ok {
		t.Fatalf("go list -deps %s listed no %s", pkg, pkg)
	}
	return graph
}

// labPackages are the card lab's packages in graph, sorted.
func labPackages(graph map[string][]string) []string {
	var lab []string
	for pkg := range graph {
		if pkg == "kpe-agent/lab" || strings.HasPrefix(pkg, "kpe-agent/lab/") {
			lab = append(lab, pkg)
		}
	}
	slices.Sort(lab)
	return lab
}

// chain is a shortest import path from `from` to `to` in graph.
func chain(graph map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		imports := slices.Clone(graph[p])
		slices.Sort(imports)
		for _, imp := range imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return []string{from, "…", to}
}
