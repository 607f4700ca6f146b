package clikit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTree is a small command tree: root → leaf (--json, -n/--count, an
// argument), group → sub.
func testTree(ran *[]string) (*cobra.Command, *bytes.Buffer, *bytes.Buffer) {
	root := &cobra.Command{Use: "tool"}
	root.PersistentFlags().StringP("lang", "l", "id", "language")
	leaf := &cobra.Command{Use: "leaf ARG", Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
		*ran = append(*ran, "leaf "+args[0])
		if args[0] == "fail" {
			return errors.New("it failed")
		}
		if args[0] == "usage" {
			return Usagef("bad %s", args[0])
		}
		return nil
	}}
	leaf.Flags().BoolP("json", "j", false, "json")
	leaf.Flags().IntP("count", "n", 1, "count")
	group := &cobra.Command{Use: "group"}
	sub := &cobra.Command{Use: "sub", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { *ran = append(*ran, "sub"); return nil }}
	sub.Flags().String("out", "", "output")
	_ = sub.MarkFlagRequired("out")
	LegacyFlag(sub, "old", "renamed: use --out")
	group.AddCommand(sub)
	root.AddCommand(leaf, group)
	var out, errOut bytes.Buffer
	Prepare(root, &out, &errOut)
	return root, &out, &errOut
}

func TestExecuteClassifiesErrors(t *testing.T) {
	for _, c := range []struct {
		args  []string
		code  int
		ran   string
		check func(error) bool
	}{
		{[]string{"leaf", "x", "--json", "-l", "en"}, 0, "leaf x", nil},
		{[]string{"--lang", "en", "leaf", "-n", "3", "x"}, 0, "leaf x", nil},
		{[]string{"leaf", "fail"}, 1, "leaf fail", func(err error) bool { return !IsUsage(err) }},
		{[]string{"leaf", "usage"}, 2, "leaf usage", IsUsage},
		{[]string{"leaf"}, 2, "", IsUsage},
		{[]string{"leaf", "x", "--nope"}, 2, "", IsUsage},
		{[]string{"leaf", "x", "-json"}, 2, "", func(err error) bool {
			var sd *SingleDashError
			return errors.As(err, &sd) && sd.Flag == "json"
		}},
		{[]string{"leaf", "x", "-lang=en"}, 2, "", func(err error) bool { return strings.Contains(err.Error(), "--lang") }},
		{[]string{"nope"}, 2, "", func(err error) bool {
			var u *UnknownCommandError
			return errors.As(err, &u) && u.Name == "nope" && u.Parent == "tool"
		}},
		{[]string{"group", "nope", "--lang", "en"}, 2, "", func(err error) bool {
			var u *UnknownCommandError
			return errors.As(err, &u) && u.Name == "nope" && u.Parent == "tool group"
		}},
		{[]string{"group"}, 2, "", func(err error) bool { return errors.Is(err, ErrNoCommand) }},
		{[]string{}, 2, "", func(err error) bool { return errors.Is(err, ErrNoCommand) }},
		{[]string{"group", "sub"}, 2, "", func(err error) bool { return strings.Contains(err.Error(), `"out" not set`) }},
		{[]string{"group", "sub", "--out", "f"}, 0, "sub", nil},
		{[]string{"group", "-h"}, 0, "", nil},
		{[]string{"leaf", "--", "-json"}, 0, "leaf -json", nil},
		// an unknown flag on a command that only groups is named
		{[]string{"group", "--bogus"}, 2, "", func(err error) bool { return strings.Contains(err.Error(), "unknown flag: --bogus") }},
		{[]string{"--bogus"}, 2, "", func(err error) bool { return strings.Contains(err.Error(), "unknown flag: --bogus") }},
		{[]string{"--version"}, 0, "", nil},
		{[]string{"help", "leaf"}, 0, "", nil},
		{[]string{"help", "nope"}, 2, "", func(err error) bool {
			var u *UnknownCommandError
			return errors.As(err, &u) && u.Name == "nope"
		}},
		// a single-dash name counts only as a flag of the command it is given to
		{[]string{"group", "sub", "-json"}, 2, "", func(err error) bool {
			var sd *SingleDashError
			return !errors.As(err, &sd) && IsUsage(err)
		}},
		// an old flag that was renamed says what it became
		{[]string{"group", "sub", "--out", "f", "-old"}, 2, "", func(err error) bool {
			var sd *SingleDashError
			return errors.As(err, &sd) && sd.Error() == "-old: renamed: use --out"
		}},
	} {
		var ran []string
		root, _, errOut := testTree(&ran)
		cmd, err := Execute(context.Background(), root, c.args)
		if code := Report(errOut, cmd, err); code != c.code {
			t.Errorf("%q: exit code %d (%v), want %d", c.args, code, err, c.code)
		}
		if got := strings.Join(ran, ","); got != c.ran {
			t.Errorf("%q: ran %q, want %q", c.args, got, c.ran)
		}
		if c.check != nil && !c.check(err) {
			t.Errorf("%q: error %v", c.args, err)
		}
	}
}

func TestReport(t *testing.T) {
	var ran []string
	root, out, errOut := testTree(&ran)
	cmd, err := Execute(context.Background(), root, []string{"group"})
	if Report(errOut, cmd, err) != 2 || !strings.Contains(errOut.String(), "Usage:\n  tool group [command]") || out.Len() > 0 {
		t.Errorf("group: stdout %q stderr %q", out, errOut)
	}
	root, out, errOut = testTree(&ran)
	cmd, err = Execute(context.Background(), root, []string{"leaf", "--nope"})
	Report(errOut, cmd, err)
	if want := "tool leaf: unknown flag: --nope\nRun 'tool leaf --help' for usage.\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	root, out, errOut = testTree(&ran)
	cmd, err = Execute(context.Background(), root, []string{"--help"})
	if Report(errOut, cmd, err) != 0 || !strings.Contains(out.String(), "Available Commands:") || errOut.Len() > 0 {
		t.Errorf("--help: stdout %q stderr %q", out, errOut)
	}
}

func TestRewriteSingleDash(t *testing.T) {
	var ran []string
	root, _, _ := testTree(&ran)
	leaf, _, _ := root.Find([]string{"leaf"})
	args, old := RewriteSingleDash(leaf, []string{"-json", "-count=2", "-n", "3", "-lang", "en", "x", "--", "-json"})
	if strings.Join(args, " ") != "--json --count=2 -n 3 --lang en x -- -json" || strings.Join(old, " ") != "-json -count -lang" {
		t.Errorf("args %q, rewritten %q", args, old)
	}
}

func TestJSONRequested(t *testing.T) {
	var ran []string
	root, _, _ := testTree(&ran)
	cmd, _ := Execute(context.Background(), root, []string{"leaf", "x", "--json"})
	if !JSONRequested(cmd, nil) {
		t.Error("--json set: not requested")
	}
	if JSONRequested(nil, []string{"leaf", "--", "--json"}) || !JSONRequested(nil, []string{"leaf", "-j", "--bad"}) {
		t.Error("the arguments are misread")
	}
}

func TestVersionAndMan(t *testing.T) {
	var ran []string
	root, out, errOut := testTree(&ran)
	cmd, err := Execute(context.Background(), root, []string{"version"})
	if Report(errOut, cmd, err) != 0 || !strings.HasPrefix(out.String(), "tool ") {
		t.Errorf("version: %q %q", out, errOut)
	}
	dir := t.TempDir()
	root, _, errOut = testTree(&ran)
	cmd, err = Execute(context.Background(), root, []string{"man", "--dir", dir})
	if Report(errOut, cmd, err) != 0 {
		t.Fatalf("man: %v %s", err, errOut)
	}
	for _, page := range []string{"tool.1", "tool-leaf.1", "tool-group-sub.1", "tool-version.1", "tool-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !strings.Contains(string(b), ".SH NAME") {
			t.Errorf("%s: %v", page, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tool-man.1")); err == nil {
		t.Error("the hidden man command has a page")
	}
}

// A flag whose default comes from the environment takes the variable's
// value, shows only its own default in the help, and gives way to the
// command line.
func TestEnvDefault(t *testing.T) {
	const secret = "postgres://u:S3cretPw@h/db"
	t.Setenv("TOOL_DSN", secret)
	t.Setenv("TOOL_EMPTY", "")
	newRoot := func(got *[2]string) (*cobra.Command, *bytes.Buffer, *bytes.Buffer) {
		root := &cobra.Command{Use: "tool"}
		var dsn, other string
		sub := &cobra.Command{Use: "serve", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
			*got = [2]string{dsn, other}
			return nil
		}}
		sub.Flags().StringVar(&dsn, "pg", "", "DSN ($TOOL_DSN)")
		EnvDefault(sub.Flags(), "pg", "TOOL_DSN")
		sub.Flags().StringVar(&other, "other", "fallback", "other ($TOOL_EMPTY)")
		EnvDefault(sub.Flags(), "other", "TOOL_EMPTY")
		root.AddCommand(sub)
		var out, errOut bytes.Buffer
		Prepare(root, &out, &errOut)
		return root, &out, &errOut
	}
	var got [2]string
	root, _, _ := newRoot(&got)
	_, err := Execute(context.Background(), root, []string{"serve"})
	require.NoError(t, err)
	assert.Equal(t, [2]string{secret, "fallback"}, got)

	root, _, _ = newRoot(&got)
	_, err = Execute(context.Background(), root, []string{"serve", "--pg", "postgres:///given", "--other", "x"})
	require.NoError(t, err)
	assert.Equal(t, [2]string{"postgres:///given", "x"}, got)

	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--bogus"}, {"help", "serve"}} {
		root, out, errOut := newRoot(&got)
		cmd, err := Execute(context.Background(), root, args)
		Report(errOut, cmd, err)
		text := out.String() + errOut.String()
		assert.NotContains(t, text, "S3cret", args)
		if args[1] != "--bogus" {
			assert.Contains(t, text, "DSN ($TOOL_DSN)", args)
			assert.Contains(t, text, `(default "fallback")`, args)
		}
	}
	assert.Panics(t, func() { EnvDefault(pflag.NewFlagSet("x", pflag.ContinueOnError), "pg", "TOOL_DSN") })
}
