package clikit

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"kpe-agent/internal/buildinfo"
)

// versionJSON is version --json: the binary's name and its build.
type versionJSON struct {
	Name string `json:"name"`
	buildinfo.Info
}

// VersionCommand is `version [--json]`: the release version, the commit
// (and whether the tree was modified), the commit time, the build date and
// the Go version (internal/buildinfo).
func VersionCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build date and Go version",
		Long: "Print the release version (or (devel) for a build that was given none), the commit the binary " +
			"was built from and whether the working tree had changes, the commit time, the build date and the " +
			"Go version.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			name := cmd.Root().Name()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(versionJSON{Name: name, Info: info})
			}
			return info.Write(cmd.OutOrStdout(), name)
		},
	}
	c.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON")
	return c
}

// ManCommand is the hidden `man --dir DIR`: the man pages (section 1) of
// the binary and each of its commands, for the packages (make package).
// The page date is $SOURCE_DATE_EPOCH when set, for reproducible builds.
func ManCommand() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:    "man --dir DIR",
		Short:  "Write the man pages of every command into DIR",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			header := &doc.GenManHeader{Section: "1", Source: "kpe-agent " + buildinfo.Read().Version, Manual: "kpe-agent manual"}
			if err := doc.GenManTree(cmd.Root(), header, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&dir, "dir", "d", "", "output directory (created if missing)")
	_ = c.MarkFlagRequired("dir")
	return c
}
