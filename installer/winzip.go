//go:build ignore

// winzip writes the Windows zip of make package (installer/package.sh):
//
//	go run installer/winzip.go -o OUT.zip -config configs/agent.yaml FILE...
//
// The zip holds one folder, kpe-agent\, with the files (by base name) and
// agent.yaml: the configuration with its Linux paths moved under
// C:\ProgramData\kpe-agent (install.ps1 substitutes the real
// %ProgramData%) and log.file set (a service has no standard error).
package main

import (
	"archive/zip"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

const folder = "kpe-agent/"

// Linux directories and their Windows counterparts.
var (
	linuxPath = regexp.MustCompile(`/(etc|var/lib|var/log)/kpe-agent((?:/[^\s"'#,\]]*)?)`)
	windowsOf = map[string]string{
		"etc":     `C:\ProgramData\kpe-agent`,
		"var/lib": `C:\ProgramData\kpe-agent`,
		"var/log": `C:\ProgramData\kpe-agent\logs`,
	}
)

// windowsLogFile replaces log.file's "" (standard error, which a Windows
// service does not have).
const windowsLogFile = `C:\ProgramData\kpe-agent\logs\agent.log`

// windowsConfig rewrites the Linux paths of a configuration file and sets
// log.file when it is "".
func windowsConfig(linux []byte) []byte {
	out := linuxPath.ReplaceAllFunc(linux, func(m []byte) []byte {
		sub := linuxPath.FindSubmatch(m)
		return []byte(windowsOf[string(sub[1])] + strings.ReplaceAll(string(sub[2]), "/", `\`))
	})
	lines := strings.SplitAfter(string(out), "\n")
	section := ""
	for i, l := range lines {
		if len(l) > 0 && l[0] != ' ' && l[0] != '#' && l[0] != '\n' {
			section, _, _ = strings.Cut(l, ":")
		}
		if section == "log" && strings.TrimSpace(l) == `file: ""` {
			lines[i] = strings.Replace(l, `""`, windowsLogFile, 1)
		}
	}
	out = []byte(strings.Join(lines, ""))
	header := "# kpe-agent configuration for Windows: configs/agent.yaml with its paths under\n" +
		"# %ProgramData%\\kpe-agent. install.ps1 copies it to %ProgramData%\\kpe-agent\\agent.yaml\n" +
		"# (and keeps an existing one).\n"
	return append([]byte(header), out...)
}

func main() {
	out := flag.String("o", "", "zip file to write")
	config := flag.String("config", "", "configuration file (Linux paths)")
	flag.Parse()
	if err := run(*out, *config, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "winzip:", err)
		os.Exit(1)
	}
}

func run(out, config string, files []string) error {
	if out == "" || config == "" || len(files) == 0 {
		return errors.New("usage: winzip -o OUT.zip -config agent.yaml FILE [FILE]")
	}
	cfg, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, r io.Reader, mod time.Time) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: folder + name, Method: zip.Deflate, Modified: mod})
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		return err
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		fi, err := fh.Stat()
		if err == nil {
			err = add(filepath.Base(f), fh, fi.ModTime())
		}
		fh.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	if err := add("agent.yaml", bytes.NewReader(windowsConfig(cfg)), time.Now()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
