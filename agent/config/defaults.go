package config

import (
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// defaults are the values of keys set nowhere else. terminal.id and
// terminal.site have none: they are required.
func defaults() map[string]any {
	return map[string]any{
		"terminal.language":         "id",
		"terminal.lab":              false,
		"readers.card":              []string{},
		"readers.sam":               []string{},
		"readers.ignore":            []string{},
		"ktpel.pseudonym":           PseudonymSAM,
		"fingerprint.sensor":        "none",
		"fingerprint.timeout":       30 * time.Second,
		"fingerprint.command":       []string{},
		"session.read_timeout":      15 * time.Second,
		"session.sign_timeout":      10 * time.Second,
		"session.max_wait":          5 * time.Minute,
		"session.shutdown_grace":    10 * time.Second,
		"services":                  []string{"askes", "taspen", "bapertarum", "kiosk"},
		"outbox.path":               DefaultOutboxPath(),
		"outbox.max_records":        100000,
		"outbox.max_age":            720 * time.Hour,
		"outbox.retention":          720 * time.Hour,
		"sync.url":                  "",
		"sync.interval":             30 * time.Second,
		"api.listen":                "127.0.0.1:7531",
		"api.token_file":            DefaultTokenFile(),
		"api.allowed_origins":       []string{},
		"api.allowed_hosts":         []string{},
		"api.tls_cert_file":         "",
		"api.tls_key_file":          "",
		"api.max_event_streams":     DefaultMaxEventStreams,
		"kiosk.enabled":             false,
		"kiosk.idle_timeout":        60 * time.Second,
		"kiosk.idle_warning":        10 * time.Second,
		"kiosk.verify_url":          "",
		"loket.enabled":             false,
		"renewal.enabled":           true,
		"renewal.offer_timeout":     10 * time.Second,
		"ewallet.enabled":           false,
		"ewallet.merchant_id":       "",
		"ewallet.merchant_name":     "",
		"ewallet.max_payment":       DefaultMaxBalance,
		"ewallet.fingerprint_above": DefaultFingerprintAbove,
		"ewallet.max_balance":       DefaultMaxBalance,
		"ewallet.topup":             true,
		"ewallet.topup_timeout":     10 * time.Second,
		"log.level":                 "info",
		"log.file":                  "",
		"log.max_size_mb":           10,
		"log.max_files":             5,
	}
}

// DefaultMaxEventStreams is api.max_event_streams's default.
const DefaultMaxEventStreams = 16

// DefaultOutboxPath is outbox.path's default:
// /var/lib/kpe-agent/outbox.db, on Windows
// %ProgramData%\kpe-agent\outbox.db.
func DefaultOutboxPath() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "kpe-agent", "outbox.db")
	}
	return "/var/lib/kpe-agent/outbox.db"
}

// DefaultTokenFile is api.token_file's default:
// /etc/kpe-agent/secrets/api-token, on Windows
// %ProgramData%\kpe-agent\secrets\api-token.
func DefaultTokenFile() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "kpe-agent", "secrets", "api-token")
	}
	return "/etc/kpe-agent/secrets/api-token"
}

func programData() string {
	if d := os.Getenv("ProgramData"); d != "" {
		return d
	}
	return `C:\ProgramData`
}

// DefaultFile is the configuration file's default location:
// /etc/kpe-agent/agent.yaml, on Windows %ProgramData%\kpe-agent\agent.yaml
// (where the Windows installer puts it).
func DefaultFile() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "kpe-agent", "agent.yaml")
	}
	return "/etc/kpe-agent/agent.yaml"
}
