package main

import (
	"os/user"
	"strings"
	"testing"

	"kpe-agent/agent/config"
)

// kpe-agent install gives the API token to kpe-agent-api when the service
// account can read it through that group, and otherwise keeps the
// service's group and says how to split them.
func TestTokenGroup(t *testing.T) {
	_, err := user.LookupGroup(config.APIGroup)
	apiGroup := err == nil

	// an account that does not exist is never a member: the service's
	// group, and the note naming kpe-agent-api
	g, note := tokenGroup("no-such-account-kpe", "svc")
	if g != "svc" || !strings.Contains(note, config.APIGroup) || !strings.Contains(note, "svc") {
		t.Errorf("tokenGroup(no such account) = %q, %q; want svc and a note naming %s", g, note, config.APIGroup)
	}
	// the service as root reads any group's file
	g, note = tokenGroup("root", "")
	switch {
	case apiGroup && (g != config.APIGroup || note != ""):
		t.Errorf("tokenGroup(root) with %s present = %q, %q; want %s", config.APIGroup, g, note, config.APIGroup)
	case !apiGroup && (g != "" || note != ""):
		t.Errorf("tokenGroup(root) without %s = %q, %q; want the default group, no note", config.APIGroup, g, note)
	}
	// no group to name, no note
	if _, note := tokenGroup("no-such-account-kpe", ""); note != "" {
		t.Errorf("tokenGroup without a service group gave a note: %q", note)
	}
}
