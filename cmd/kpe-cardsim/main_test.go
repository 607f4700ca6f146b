package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{
		"-vpcd-port", "40000", "-slots", "3", "-insert", "0=a.json", "-insert", "2=b.json",
		"-log-level", "debug", "-control", "[::1]:9000",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.vpcdPort != 40000 || o.slots != 3 || o.logLevel != slog.LevelDebug || o.control != "[::1]:9000" {
		t.Fatalf("%+v", o)
	}
	if len(o.inserts) != 2 || o.inserts[1] != (insertion{slot: 2, path: "b.json"}) {
		t.Fatalf("inserts %+v", o.inserts)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-control", "0.0.0.0:35990"}, "not a loopback"},
		{[]string{"-control", ":35990"}, "not a loopback"},
		{[]string{"-control", "192.168.1.10:35990"}, "not a loopback"},
		{[]string{"-control", "nonsense"}, "missing port"},
		{[]string{"-insert", "a.json"}, "SLOT=PATH"},
		{[]string{"-insert", "x=a.json"}, "bad slot"},
		{[]string{"-insert", "-1=a.json"}, "bad slot"},
		{[]string{"-log-level", "loud"}, "log-level"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, ok := range [][]string{
		{"-control", "localhost:1"},
		{"-control", "127.0.0.2:1"},
		{"-control", ""},
		{"-control", "0.0.0.0:35990", "-control-allow-remote"},
	} {
		if _, err := parseFlags(ok); err != nil {
			t.Fatalf("%v: %v", ok, err)
		}
	}
}
