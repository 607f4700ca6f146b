package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSchema(t *testing.T) {
	require.Empty(t, schemaKeys.problems)
	require.Equal(t, "sync.client_cert", schemaKeys.byEnv["KPE_SYNC_CLIENT_CERT"].key)
	require.Equal(t, "terminal.id", schemaKeys.byEnv["KPE_TERMINAL_ID"].key)
	require.Equal(t, "log.max_size_mb", schemaKeys.byEnv["KPE_LOG_MAX_SIZE_MB"].key)
	require.Nil(t, schemaKeys.byEnv["KPE_MESSAGES_ID"], "messages are not set from the environment")
	for k := range defaults() {
		require.Contains(t, schemaKeys.leaves, k, "default of an unknown key")
	}
	for k := range pathKeys {
		require.Equal(t, kindString, schemaKeys.leaves[k].kind, k)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(Source{Set: map[string]string{"terminal.id": "T-01", "terminal.site": "S-01"}})
	require.NoError(t, err)
	require.Equal(t, "", c.File)
	require.Equal(t, Terminal{ID: "T-01", Site: "S-01", Language: "id"}, c.Terminal)
	require.Empty(t, c.Readers.Card)
	require.Equal(t, "none", c.Fingerprint.Sensor)
	require.Equal(t, 30*time.Second, c.Fingerprint.Timeout)
	require.Equal(t, Session{ReadTimeout: 15 * time.Second, SignTimeout: 10 * time.Second, MaxWait: 5 * time.Minute, ShutdownGrace: 10 * time.Second}, c.Session)
	require.Equal(t, []string{"askes", "taspen", "bapertarum", "kiosk"}, c.Services)
	require.Equal(t, Outbox{Path: "/var/lib/kpe-agent/outbox.db", MaxRecords: 100000, MaxAge: 720 * time.Hour, Retention: 720 * time.Hour}, c.Outbox)
	require.Equal(t, "", c.Sync.URL)
	require.Equal(t, 30*time.Second, c.Sync.Interval)
	require.Equal(t, "127.0.0.1:7531", c.API.Listen)
	require.Equal(t, "/etc/kpe-agent/secrets/api-token", c.API.TokenFile)
	require.Empty(t, c.API.AllowedOrigins)
	require.Empty(t, c.API.AllowedHosts)
	require.Equal(t, Log{Level: "info", File: "", MaxSize: 10, MaxFiles: 5}, c.Log)
}

func TestRequired(t *testing.T) {
	_, err := Load(Source{})
	require.Contains(t, problemFor(t, err, "terminal.id").Error(), "config: terminal.id: missing; want 1 to 64")
	problemFor(t, err, "terminal.site")

	p := writeFile(t, "terminal:\n  site: S\n")
	_, err = Load(Source{File: p})
	e := problemFor(t, err, "terminal.id")
	require.Equal(t, p, e.File, "a missing key is the file's")
}

// TestExample: configs/agent.yaml (also the packages' configuration)
// leaves terminal.id and terminal.site empty, so it is refused until a
// technician sets them; with them set it loads, holds the defaults and
// lists every key.
func TestExample(t *testing.T) {
	const example = "../../configs/agent.yaml"
	_, err := Load(Source{File: example})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "terminal.id: missing")
	require.ErrorContains(t, err, "terminal.site: missing")

	ids := map[string]string{"terminal.id": "PKM-CIBINONG-01", "terminal.site": "PKM-CIBINONG"}
	c, err := Load(Source{File: example, Set: ids})
	require.NoError(t, err)
	abs, _ := filepath.Abs(example)
	require.Equal(t, abs, c.File)
	d, err := Load(Source{Set: ids})
	require.NoError(t, err)
	d.File = c.File
	require.Equal(t, d, c, "the example holds the defaults")

	data, err := os.ReadFile(example)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(data, &m))
	for _, lf := range schemaKeys.ordered {
		var cur any = m
		for _, part := range strings.Split(lf.key, ".") {
			mm, ok := cur.(map[string]any)
			require.True(t, ok, "%s is not in the example", lf.key)
			cur, ok = mm[part]
			require.True(t, ok, "%s is not in the example", lf.key)
		}
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Source{File: filepath.Join(t.TempDir(), "nope.yaml")})
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Contains(t, err.Error(), "nope.yaml")
}

func TestEmptyFile(t *testing.T) {
	for _, content := range []string{"", "# nothing\n", "---\n", "~\n"} {
		_, err := Load(Source{File: writeFile(t, content), Set: map[string]string{"terminal.id": "T", "terminal.site": "S"}})
		require.NoError(t, err, "%q", content)
	}
}

func TestNotYAML(t *testing.T) {
	p := writeFile(t, "terminal: [\n")
	_, err := Load(Source{File: p})
	ps := problems(t, err)
	require.Len(t, ps, 1, "no 'missing' noise after a syntax error: %v", err)
	require.Contains(t, ps[0].Error(), p+": is not valid YAML")

	p = writeFile(t, "- a\n- b\n")
	_, err = Load(Source{File: p})
	require.Contains(t, err.Error(), p+":1: is not a mapping of keys")
}

func TestUnknownKeys(t *testing.T) {
	p := writeFile(t, minimal+`synk:
  url: x
sync:
  urll: https://bo.example
log:
  levle: debug
messages:
  fr:
    a: b
`)
	_, err := Load(Source{File: p})
	e := problemFor(t, err, "synk")
	require.Equal(t, p, e.File)
	require.Equal(t, 4, e.Line)
	require.Contains(t, e.Error(), p+":4: synk: unknown key; want one of the top-level keys: api, ")
	require.Contains(t, e.Error(), "(did you mean sync?)")
	require.Contains(t, problemFor(t, err, "sync.urll").Error(), p+":7: sync.urll: unknown key; want one of the keys of sync: ca, client_cert, client_key, interval, url (did you mean sync.url?)")
	require.Contains(t, problemFor(t, err, "log.levle").Error(), "(did you mean log.level?)")
	problemFor(t, err, "messages.fr")
	require.Len(t, problems(t, err), 4)

	_, err = Load(Source{File: writeFile(t, minimal+"Log:\n  level: debug\n")})
	require.Contains(t, problemFor(t, err, "Log").Error(), "unknown key (keys are lower case)")
}

func TestUnknownSetKeys(t *testing.T) {
	_, err := Load(Source{File: writeFile(t, minimal), Set: map[string]string{
		"sync.urll":    "x",
		"synk.url":     "x",
		"sync":         "x",
		"messages.id":  "x",
		"terminal.id.": "x",
	}})
	require.Equal(t, "config: --set sync.urll: unknown key; want one of the keys of sync: ca, client_cert, client_key, interval, url (did you mean sync.url?)",
		problemFor(t, err, "sync.urll").Error())
	require.Contains(t, problemFor(t, err, "synk.url").Error(), "(did you mean sync?)")
	require.Contains(t, problemFor(t, err, "sync").Error(), "is a group of keys; want one of its keys: sync.ca, sync.client_cert")
	require.Contains(t, problemFor(t, err, "messages.id").Error(), "messages.id.<code>=text")
	problemFor(t, err, "terminal.id.")
}

func TestIgnoresOtherVariables(t *testing.T) {
	c, err := Load(Source{File: writeFile(t, minimal), Environ: []string{
		"KPE_OUTBOX=/tmp/x.db", "KPE_LANG=en", "KPE_CONFIG=/x.yaml", "KPE_CARDSIM_STATE_DIR=/tmp",
		"KPE_TEST_PG_DSN=postgres://", "KPE_SYNC=x", "KPE_MESSAGES_ID_NO_CARD=x", "PATH=/bin", "KPE_TERMINAL_ID",
	}})
	require.NoError(t, err)
	require.Equal(t, "T-01", c.Terminal.ID)
	require.Equal(t, "id", c.Terminal.Language)
}

func TestWrongTypes(t *testing.T) {
	for _, tc := range []struct{ yaml, key, want string }{
		{"sync:\n  interval: abc\n", "sync.interval", `sync.interval: "abc" is not a duration; want e.g. 30s or 5m`},
		{"sync:\n  interval: 30\n", "sync.interval", `sync.interval: "30" is not a duration; want e.g. 30s or 5m`},
		{"outbox:\n  max_records: many\n", "outbox.max_records", `outbox.max_records: "many" is not a whole number; want a whole number such as 100000`},
		{"services: 5\n", "services", `services: "5" is a single value, not a list; want a YAML list such as [a, b]`},
		{"services: [[a]]\n", "services", `services: has an item that is a list or empty`},
		{"terminal:\n  id: T\n  site: S\n  lab: yes\n", "terminal.lab", `terminal.lab: "yes" is not a boolean; want true or false`},
		{"session: 5s\n", "session", `session: "5s" is a single value, not a group of keys; want a mapping of max_wait, read_timeout, shutdown_grace, sign_timeout`},
		{"terminal:\n  id: [a]\n", "terminal.id", `terminal.id: is a list, not a string`},
		{"messages:\n  id: hello\n", "messages.id", `messages.id: "hello" is a single value, not a mapping`},
		{"messages:\n  id:\n    No_Card: x\n", "messages.id.No_Card", `messages.id.No_Card: is not a message code`},
		{"messages:\n  id:\n    no-card: [x]\n", "messages.id.no-card", `messages.id.no-card: is a list or empty, not a text`},
		{"log:\n  level: info\n  level: debug\n", "log.level", `log.level: appears twice`},
	} {
		content := minimal + tc.yaml
		if strings.HasPrefix(tc.yaml, "terminal:") {
			content = tc.yaml
		}
		p := writeFile(t, content)
		_, err := Load(Source{File: p})
		if err == nil {
			t.Fatalf("%q loads", tc.yaml)
		}
		e := problemFor(t, err, tc.key)
		require.Equal(t, p, e.File)
		require.Contains(t, e.Error(), "config: "+p+":", tc.yaml)
		require.Contains(t, e.Error(), tc.want, tc.yaml)
	}
}

func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		set       map[string]string
		key, want string
	}{
		{map[string]string{"terminal.id": "a b"}, "terminal.id", `"a b" is not a valid ID; want 1 to 64 characters`},
		{map[string]string{"terminal.site": strings.Repeat("s", 65)}, "terminal.site", "is not a valid ID"},
		{map[string]string{"terminal.language": "fr"}, "terminal.language", `"fr" is not allowed; want one of id, en`},
		{map[string]string{"readers.card": "ACS*,[a-"}, "readers.card", `"[a-" is not a valid pattern`},
		{map[string]string{"fingerprint.sensor": "usb"}, "fingerprint.sensor", "want one of lab, command, none"},
		{map[string]string{"fingerprint.sensor": "lab"}, "fingerprint.lab_url", "missing (fingerprint.sensor is lab)"},
		{map[string]string{"fingerprint.sensor": "lab", "fingerprint.lab_url": "ftp://x"}, "fingerprint.lab_url", "is not an http or https URL"},
		{map[string]string{"fingerprint.sensor": "lab", "fingerprint.lab_url": "http://127.0.0.1:35990"}, "fingerprint.sensor",
			`"lab" is allowed only when terminal.lab is true`},
		{map[string]string{"terminal.lab": "true", "fingerprint.sensor": "lab", "fingerprint.lab_url": "http://10.0.0.5:35990"}, "fingerprint.lab_url",
			`"http://10.0.0.5:35990" is not on a loopback host; want the URL of the card lab on this machine`},
		{map[string]string{"fingerprint.sensor": "command"}, "fingerprint.command", "missing (fingerprint.sensor is command)"},
		{map[string]string{"session.max_wait": "0s"}, "session.max_wait", `"0s" is not positive; want a duration above zero`},
		{map[string]string{"fingerprint.timeout": "-1s"}, "fingerprint.timeout", "is not positive"},
		{map[string]string{"services": ""}, "services", "is empty"},
		{map[string]string{"services": "askes,Taspen"}, "services", `"Taspen" is not a valid service name`},
		{map[string]string{"services": "askes,askes"}, "services", `"askes" is listed twice`},
		{map[string]string{"outbox.max_records": "0"}, "outbox.max_records", "is not positive"},
		{map[string]string{"outbox.path": ""}, "outbox.path", "missing"},
		{map[string]string{"sync.url": "http://bo.example"}, "sync.url", "uses http (allowed only when terminal.lab is true)"},
		{map[string]string{"sync.url": "https://bo.example/api"}, "sync.url", "has a path"},
		{map[string]string{"sync.url": "https://"}, "sync.url", "has no host"},
		{map[string]string{"sync.url": "https://bo.example:99999"}, "sync.url", "has an invalid port"},
		{map[string]string{"sync.url": "bo.example"}, "sync.url", "is not an https URL"},
		{map[string]string{"sync.url": "https://bo.example"}, "sync.client_cert", "missing (sync.url is set)"},
		{map[string]string{"sync.url": "https://bo.example", "sync.client_cert": "c.pem"}, "sync.client_key", "missing (sync.url is set)"},
		{map[string]string{"api.listen": "0.0.0.0:7531"}, "api.listen", "is not a loopback address"},
		{map[string]string{"api.listen": ":7531"}, "api.listen", "is not a loopback address"},
		{map[string]string{"api.listen": "127.0.0.1"}, "api.listen", "is not host:port"},
		{map[string]string{"api.listen": "localhost:x"}, "api.listen", "has an invalid port"},
		{map[string]string{"api.allowed_origins": "https://a.example/app"}, "api.allowed_origins", `"https://a.example/app" has a path; want origins such as`},
		{map[string]string{"api.allowed_origins": "https://a.example/"}, "api.allowed_origins", "has a trailing slash"},
		{map[string]string{"api.allowed_origins": "*"}, "api.allowed_origins", "is a wildcard"},
		{map[string]string{"api.allowed_origins": "a.example"}, "api.allowed_origins", "is not scheme://host"},
		{map[string]string{"api.allowed_hosts": "a b"}, "api.allowed_hosts", "is not a host name"},
		{map[string]string{"log.level": "verbose"}, "log.level", "want one of debug, info, warn, error"},
		{map[string]string{"log.max_size_mb": "2000"}, "log.max_size_mb", `"2000" is out of range; want a whole number from 1 to 1024`},
		{map[string]string{"log.max_files": "0"}, "log.max_files", "from 1 to 100"},
		{map[string]string{"messages.en.No": "x"}, "messages.en.No", "is not a message code"},
	} {
		set := map[string]string{"terminal.id": "T", "terminal.site": "S"}
		for k, v := range tc.set {
			set[k] = v
		}
		_, err := Load(Source{Set: set})
		if err == nil {
			t.Fatalf("%v loads", tc.set)
		}
		e := problemFor(t, err, tc.key)
		require.Contains(t, e.Error(), tc.want, "%v", tc.set)
		if _, ok := tc.set[tc.key]; ok {
			require.Equal(t, "--set "+tc.key, e.File)
			require.Contains(t, e.Error(), "config: --set "+tc.key+": ")
		}
	}
}

func TestGoodValues(t *testing.T) {
	c, err := Load(Source{Set: map[string]string{
		"terminal.id": "PKM_01.a-b", "terminal.site": "S", "terminal.language": "en",
		"readers.card": "ACS ACR39U*, Gemalto?", "readers.ignore": `Yubico\*`,
		"terminal.lab": "true", "fingerprint.sensor": "lab", "fingerprint.lab_url": "http://127.0.0.1:35990",
		"services": "askes, kiosk-2",
		"sync.url": "https://bo.example.go.id:8443/", "sync.client_cert": "/c", "sync.client_key": "/k", "sync.ca": "/ca",
		"api.listen": "[::1]:7531", "api.allowed_origins": "https://portal.example.go.id,http://localhost:3000",
		"api.allowed_hosts":   "kiosk-01.local,kiosk-01.local:7531,10.0.0.5",
		"log.level":           "debug",
		"messages.en.no-card": "Insert the card",
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"ACS ACR39U*", "Gemalto?"}, c.Readers.Card)
	require.Equal(t, []string{"askes", "kiosk-2"}, c.Services)
	require.Equal(t, map[string]string{"no-card": "Insert the card"}, c.Messages.EN)

	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "terminal.lab": "true", "sync.url": "http://127.0.0.1:8080",
		"sync.client_cert": "c", "sync.client_key": "k", "sync.ca": "ca"}})
	require.NoError(t, err, "http with terminal.lab")
	c, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "api.listen": "0.0.0.0:7531", "api.allow_remote": "true",
		"api.tls_cert_file": "/c", "api.tls_key_file": "/k", "api.max_event_streams": "4"}})
	require.NoError(t, err, "remote with api.allow_remote and TLS")
	require.True(t, c.API.TLS())
	require.Equal(t, 4, c.API.MaxEventStreams)
	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "fingerprint.sensor": "command", "fingerprint.command": "/bin/capture,-d,0"}})
	require.NoError(t, err)
}

// The lab sensor presents whatever finger the card lab is told to: it is
// accepted only on a lab terminal and only from a loopback host, and each
// refusal names the file and line of the value refused.
func TestLabSensorOnlyOnLabTerminals(t *testing.T) {
	const sensor = "fingerprint:\n  sensor: lab\n  lab_url: %s\n"
	labTerminal := "terminal:\n  id: T-01\n  site: S-01\n  lab: true\n"

	// not a lab terminal: refused at the sensor's line (the fifth), also
	// when a flag says so
	p := writeFile(t, minimal+fmt.Sprintf(sensor, "http://127.0.0.1:35990"))
	_, err := Load(Source{File: p})
	e := problemFor(t, err, "fingerprint.sensor")
	require.Equal(t, &Error{File: p, Line: 5, Key: "fingerprint.sensor", Value: "lab", Reason: "is allowed only when terminal.lab is true",
		Want: "command (the terminal's sensor) or none; lab only on a card-lab terminal (terminal.lab: true)"}, e)
	require.Equal(t, "config: "+p+":5: fingerprint.sensor: \"lab\" is allowed only when terminal.lab is true; "+
		"want command (the terminal's sensor) or none; lab only on a card-lab terminal (terminal.lab: true)", e.Error())
	require.Len(t, problems(t, err), 1)
	_, err = Load(Source{File: p, Set: map[string]string{"terminal.lab": "false"}})
	require.Equal(t, "config: "+p+":5: fingerprint.sensor: \"lab\" is allowed only when terminal.lab is true; "+
		"want command (the terminal's sensor) or none; lab only on a card-lab terminal (terminal.lab: true)",
		problemFor(t, err, "fingerprint.sensor").Error())
	_, err = Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S", "fingerprint.sensor": "lab", "fingerprint.lab_url": "http://localhost:1"}})
	require.Contains(t, problemFor(t, err, "fingerprint.sensor").Error(), `config: --set fingerprint.sensor: "lab" is allowed only when terminal.lab is true`)

	// a lab terminal with a lab URL that is not on this machine: refused
	// at the URL's line (the seventh)
	for _, u := range []string{"http://10.0.0.5:35990", "https://lab.example", "http://128.0.0.1:35990", "http://[::2]:35990",
		"http://localhost.example:35990", "http://0.0.0.0:35990", "http://[fe80::1%25lo]:35990"} {
		p := writeFile(t, labTerminal+fmt.Sprintf(sensor, u))
		_, err := Load(Source{File: p})
		e := problemFor(t, err, "fingerprint.lab_url")
		require.Equal(t, p, e.File, u)
		require.Equal(t, 7, e.Line, u)
		require.Equal(t, "is not on a loopback host", e.Reason, u)
		require.ErrorIs(t, e, ErrInvalid)
		require.Contains(t, e.Error(), "config: "+p+":7: fingerprint.lab_url: \""+u+"\" is not on a loopback host; "+
			"want the URL of the card lab on this machine (a loopback host: 127.0.0.0/8, ::1 or localhost)", u)
		require.Len(t, problems(t, err), 1, u)
	}
	// from the environment: the variable is named
	_, err = Load(Source{File: writeFile(t, labTerminal+fmt.Sprintf(sensor, "http://127.0.0.1:35990")),
		Environ: []string{"KPE_FINGERPRINT_LAB_URL=http://192.168.1.9:35990"}})
	require.Equal(t, `config: KPE_FINGERPRINT_LAB_URL: fingerprint.lab_url: "http://192.168.1.9:35990" is not on a loopback host; `+
		"want the URL of the card lab on this machine (a loopback host: 127.0.0.0/8, ::1 or localhost), e.g. http://127.0.0.1:35990",
		problemFor(t, err, "fingerprint.lab_url").Error())

	// both at once: both reported
	_, err = Load(Source{File: writeFile(t, minimal+fmt.Sprintf(sensor, "http://10.0.0.5:35990"))})
	problemFor(t, err, "fingerprint.sensor")
	problemFor(t, err, "fingerprint.lab_url")

	// accepted: a lab terminal with the card lab on a loopback host
	for _, u := range []string{"http://127.0.0.1:35990", "http://127.8.9.10:35990", "https://localhost:35990", "http://LOCALHOST",
		"http://[::1]:35990", "http://127.0.0.1:35990/"} {
		c, err := Load(Source{File: writeFile(t, labTerminal+fmt.Sprintf(sensor, u))})
		require.NoError(t, err, u)
		require.Equal(t, u, c.Fingerprint.LabURL)
	}
	// other sensors need no lab terminal
	_, err = Load(Source{File: writeFile(t, minimal+"fingerprint:\n  sensor: none\n  lab_url: http://10.0.0.5:1\n")})
	require.NoError(t, err, "lab_url is not used without the lab sensor")
}

func TestSourcesNamed(t *testing.T) {
	p := writeFile(t, minimal+"sync:\n  interval: 1m\n")
	_, err := Load(Source{File: p, Environ: []string{"KPE_SYNC_INTERVAL=abc", "KPE_LOG_LEVEL=loud"}})
	e := problemFor(t, err, "sync.interval")
	require.Equal(t, `config: KPE_SYNC_INTERVAL: sync.interval: "abc" is not a duration; want e.g. 30s or 5m`, e.Error())
	require.Equal(t, `config: KPE_LOG_LEVEL: log.level: "loud" is not allowed; want one of debug, info, warn, error`, problemFor(t, err, "log.level").Error())

	_, err = Load(Source{File: p, Set: map[string]string{"sync.interval": "abc"}})
	require.Equal(t, `config: --set sync.interval: "abc" is not a duration; want e.g. 30s or 5m`, problemFor(t, err, "sync.interval").Error())

	// A bad file value overridden by a good variable is still reported:
	// the file is wrong.
	p = writeFile(t, minimal+"sync:\n  interval: abc\n")
	_, err = Load(Source{File: p, Environ: []string{"KPE_SYNC_INTERVAL=1m"}})
	require.Equal(t, p, problemFor(t, err, "sync.interval").File)
}

func TestAllProblemsReported(t *testing.T) {
	p := writeFile(t, "terminal:\n  id: T\nsync:\n  interval: abc\n  urll: x\noutbox:\n  max_records: many\nlog:\n  level: loud\n")
	_, err := Load(Source{File: p, Set: map[string]string{"services": "A"}})
	var keys []string
	for _, e := range problems(t, err) {
		keys = append(keys, e.Key)
	}
	require.ElementsMatch(t, []string{"terminal.site", "sync.interval", "sync.urll", "outbox.max_records", "log.level", "services"}, keys)
}

func TestPrecedence(t *testing.T) {
	p := writeFile(t, "terminal:\n  id: T-01\n  site: file\nsync:\n  interval: 1m\nservices: [askes]\n")
	env := []string{"KPE_TERMINAL_SITE=env", "KPE_SYNC_INTERVAL=2m", "KPE_SERVICES=taspen, kiosk"}
	set := map[string]string{"terminal.site": "set", "sync.interval": "3m", "services": "bapertarum"}

	c, err := Load(Source{Set: map[string]string{"terminal.id": "T", "terminal.site": "S"}})
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.Sync.Interval, "default")
	require.Len(t, c.Services, 4, "default")

	c, err = Load(Source{File: p})
	require.NoError(t, err)
	require.Equal(t, "file", c.Terminal.Site)
	require.Equal(t, time.Minute, c.Sync.Interval)
	require.Equal(t, []string{"askes"}, c.Services)

	c, err = Load(Source{File: p, Environ: env})
	require.NoError(t, err)
	require.Equal(t, "env", c.Terminal.Site)
	require.Equal(t, 2*time.Minute, c.Sync.Interval)
	require.Equal(t, []string{"taspen", "kiosk"}, c.Services)

	c, err = Load(Source{File: p, Environ: env, Set: set})
	require.NoError(t, err)
	require.Equal(t, "set", c.Terminal.Site)
	require.Equal(t, 3*time.Minute, c.Sync.Interval)
	require.Equal(t, []string{"bapertarum"}, c.Services)
	require.Equal(t, "T-01", c.Terminal.ID, "keys set only lower keep their value")

	// Without the file, env still beats defaults.
	c, err = Load(Source{Environ: append(env, "KPE_TERMINAL_ID=T")})
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, c.Sync.Interval)

	// Empty variables count as unset; an empty --set is a value.
	c, err = Load(Source{File: p, Environ: []string{"KPE_TERMINAL_SITE="}})
	require.NoError(t, err)
	require.Equal(t, "file", c.Terminal.Site)
	c, err = Load(Source{File: p, Set: map[string]string{"readers.ignore": ""}})
	require.NoError(t, err)
	require.Empty(t, c.Readers.Ignore)

	// Messages merge code by code.
	p = writeFile(t, minimal+"messages:\n  id:\n    no-card: file\n    busy: file\n")
	c, err = Load(Source{File: p, Set: map[string]string{"messages.id.no-card": "set"}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"no-card": "set", "busy": "file"}, c.Messages.ID)
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte(minimal+`log:
  file: logs/agent.log
sam:
  activation_code_file: secrets/sam-code
trust:
  bkn: /abs/bkn.pem
  dukcapil: ../dukcapil.pem
`), 0o644))
	wd, err := os.Getwd()
	require.NoError(t, err)

	// Loaded through a relative name too.
	rel, err := filepath.Rel(wd, p)
	require.NoError(t, err)
	c, err := Load(Source{File: rel, Environ: []string{"KPE_OUTBOX_PATH=data/outbox.db"}, Set: map[string]string{"api.token_file": "tok"}})
	require.NoError(t, err)
	require.Equal(t, p, c.File)
	require.Equal(t, filepath.Join(dir, "logs", "agent.log"), c.Log.File)
	require.Equal(t, filepath.Join(dir, "secrets", "sam-code"), c.SAM.ActivationCodeFile)
	require.Equal(t, "/abs/bkn.pem", c.Trust.BKN)
	require.Equal(t, filepath.Join(filepath.Dir(dir), "dukcapil.pem"), c.Trust.Dukcapil)
	require.Equal(t, filepath.Join(wd, "data", "outbox.db"), c.Outbox.Path, "from the environment: the working directory")
	require.Equal(t, filepath.Join(wd, "tok"), c.API.TokenFile, "from --set: the working directory")
	require.Equal(t, "", c.SAM.KTPSecretsFile, "empty stays empty")
}

func TestAliasesAndErrorsBounded(t *testing.T) {
	_, err := Load(Source{File: writeFile(t, "x: &svc [askes, kiosk]\n")})
	require.Error(t, err)
	c, err := Load(Source{File: writeFile(t, minimal+"readers:\n  card: &r [ACS*]\n  ignore: *r\n")})
	require.NoError(t, err)
	require.Equal(t, []string{"ACS*"}, c.Readers.Ignore)

	var b strings.Builder
	for i := range 200 {
		b.WriteString("k" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ": 1\n")
	}
	_, err = Load(Source{File: writeFile(t, b.String())})
	require.ErrorIs(t, err, ErrInvalid)
	require.LessOrEqual(t, len(problems(t, err)), maxErrors)
	require.Contains(t, err.Error(), "more problems not shown")
}

func TestLongValueShortened(t *testing.T) {
	_, err := Load(Source{Set: map[string]string{"terminal.id": strings.Repeat("x", 5000), "terminal.site": "S"}})
	require.Less(t, len(problemFor(t, err, "terminal.id").Error()), 300)
}

// TestHermetic: only src.Environ is read, never the process environment.
func TestHermetic(t *testing.T) {
	t.Setenv("KPE_SYNC_INTERVAL", "abc")
	t.Setenv("KPE_TERMINAL_ID", "FROM-OS")
	c, err := Load(Source{File: writeFile(t, minimal)})
	require.NoError(t, err)
	require.Equal(t, "T-01", c.Terminal.ID)
	require.Equal(t, 30*time.Second, c.Sync.Interval)
}
