package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// runOptions are the flags of run and check-config.
type runOptions struct {
	ConfigFile string
	Set        map[string]string
}

func defaultConfigFile() string {
	if v := os.Getenv("KPE_CONFIG"); v != "" {
		return v
	}
	return "/etc/kpe-agent/agent.yaml"
}

type setFlag map[string]string

func (s setFlag) String() string { return "" }
func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func parseRunFlags(name string, args []string, stderr io.Writer) (runOptions, error) {
	o := runOptions{Set: map[string]string{}}
	fs := flag.NewFlagSet("kpe-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ConfigFile, "config", defaultConfigFile(), "configuration file (YAML)")
	fs.Var(setFlag(o.Set), "set", "override a key: -set sync.url=https://bo.example:8443 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("kpe-agent %s: unexpected arguments %q", name, fs.Args())
	}
	return o, nil
}

func runCommand(args []string, stderr io.Writer) int {
	o, err := parseRunFlags("run", args, stderr)
	if err != nil {
		return 2
	}
	return runService(o, stderr)
}

// runAgent runs the agent until ctx ends, then shuts down gracefully.
// ready is called once the agent serves its API.
func runAgent(ctx context.Context, o runOptions, ready func()) error {
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}

func checkConfigCommand(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kpe-agent check-config: not built yet")
	return 1
}
