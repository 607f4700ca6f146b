package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"kpe-agent/agent/config"
)

// defaultAPITokenFile is the local API's bearer-token file that install and
// the packages create: api.token_file's default (config.DefaultTokenFile).
func defaultAPITokenFile() string { return config.DefaultTokenFile() }

// tokenFileFromConfig is the API token file the agent will read with this
// configuration: api.token_file when the file sets it (a relative path is
// relative to the file's directory, as for the agent), else
// defaultAPITokenFile(). configFile must be absolute.
func tokenFileFromConfig(configFile string) (string, error) {
	b, err := os.ReadFile(configFile)
	if err != nil {
		return "", err
	}
	var c struct {
		API struct {
			TokenFile string `yaml:"token_file"`
		} `yaml:"api"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("config file %s: %w", configFile, err)
	}
	if c.API.TokenFile == "" {
		return defaultAPITokenFile(), nil
	}
	if !filepath.IsAbs(c.API.TokenFile) {
		// As the agent reads it: relative to the configuration file.
		return filepath.Join(filepath.Dir(configFile), c.API.TokenFile), nil
	}
	return filepath.Clean(c.API.TokenFile), nil
}

// newAPIToken is 32 random bytes in hex.
func newAPIToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ensureAPIToken creates the API token file when it is missing: the
// directory 0750 and the file 0640, both root:group (on Windows an ACL for
// SYSTEM and Administrators). An existing file is left alone. created
// says whether it wrote one.
func ensureAPIToken(path, group string) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("API token: %w", err)
	}
	if err := makeSecretsDir(filepath.Dir(path), group); err != nil {
		return false, fmt.Errorf("API token directory: %w", err)
	}
	token, err := newAPIToken()
	if err != nil {
		return false, fmt.Errorf("API token: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return false, fmt.Errorf("API token: %w", err)
	}
	err = protectSecretFile(f, group)
	if err == nil {
		_, err = f.WriteString(token + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return false, fmt.Errorf("API token %s: %w", path, err)
	}
	return true, nil
}
