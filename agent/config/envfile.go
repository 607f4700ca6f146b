package config

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// envPrefix starts the agent's environment variables.
const envPrefix = "KPE_"

// ServiceEnvFiles are the files whose variables the packaged systemd unit
// gives the agent (EnvironmentFile=): a tool that inspects the installed
// agent (kpectl doctor) reads them to see the configuration the service
// sees.
var ServiceEnvFiles = []string{"/etc/default/kpe-agent", "/etc/sysconfig/kpe-agent"}

// ProxyVars are the proxy variables the agent's uploader follows (Go's
// http.ProxyFromEnvironment); ServiceEnviron takes them from the service's
// files too.
var ProxyVars = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"}

// serviceVar reports whether an environment file's variable is one the
// agent reads.
func serviceVar(k string) bool {
	return strings.HasPrefix(k, envPrefix) || slices.Contains(ProxyVars, k)
}

// ServiceEnviron returns environ with the KPE_* and proxy variables of the files
// (systemd EnvironmentFile= syntax: KEY=VALUE lines, # and ; comments,
// the value optionally in single or double quotes) added where environ
// does not set them (or sets them empty): a variable of the caller's own
// environment wins. Among the files, a later one overrides an earlier one,
// as systemd applies the unit's EnvironmentFile= lines in order
// (/etc/sysconfig/kpe-agent over /etc/default/kpe-agent). A missing file
// is skipped; an unreadable one is an error naming it.
func ServiceEnviron(environ []string, files ...string) ([]string, error) {
	have := map[string]bool{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" {
			have[k] = true // an empty one is as good as unset, as for Load
		}
	}
	// the files' variables merged: the order in which each key first
	// appears, the value of the last file that sets it
	var keys []string
	vals := map[string]string{}
	var errs []error
	for _, name := range files {
		vars, err := readEnvFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, kv := range vars {
			k, v, _ := strings.Cut(kv, "=")
			if _, seen := vals[k]; !seen {
				keys = append(keys, k)
			}
			vals[k] = v
		}
	}
	out := append([]string(nil), environ...)
	for _, k := range keys {
		if !have[k] {
			out = append(out, k+"="+vals[k])
		}
	}
	return out, errors.Join(errs...)
}

// readEnvFile returns the KPE_* and proxy assignments of an environment file, in
// order; a later one for the same key replaces an earlier one.
func readEnvFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []string
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !serviceVar(k) {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if _, seen := vals[k]; !seen {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}
