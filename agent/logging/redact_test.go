package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsPersonalWider(t *testing.T) {
	for _, k := range []string{
		"nik_hash", "nikHash", "NIKHash", "nikhash", "nip_baru", "NIP",
		"holder_name", "holderName", "HolderName", "holdername", "full_name", "nama_lengkap", "namaLengkap", "nama_ibu",
		"mother_name", "user_name", "username", "surname",
		"no_kk", "noKK", "nomor_kk", "NomorKK", "kk",
		"bpjs", "no_bpjs", "bpjsNumber", "BPJSNumber", "npwp",
		"birth_place", "tanggal_lahir", "tempatLahir", "dob",
		"address", "home_address", "homeAddress", "alamat_rumah",
		"phone", "phone_number", "no_hp", "telepon", "email", "email_address",
		"photo", "face_photo", "foto", "templates", "finger_template", "minutiae",
		"card_uid", "cardUID", "subject_id", "gender", "jenis_kelamin", "agama",
	} {
		require.True(t, IsPersonal(k), k)
	}
	for _, k := range []string{
		"reader", "reader_name", "readerName", "ReaderName", "readername", "service", "service_name",
		"file", "filename", "file_name", "host", "hostname", "addr", "ip_address", "listen_address", "remote_addr",
		"terminal", "site", "code", "err", "names", "serial", "sam_serial", "counter", "sam_counter",
		"last_record_counter", "record", "records", "part", "kind", "verdict", "checks", "operator", "trigger",
		"keys", "applied", "version", "outcome", "reason", "path", "slot", "role", "snippet", "bookkeeping",
		"uuid", "retry_in", "skew", "finger", "cert", "type_name", "typename", "namespace",
	} {
		require.False(t, IsPersonal(k), k)
	}
}

func TestWords(t *testing.T) {
	for k, want := range map[string][]string{
		"nik_hash": {"nik", "hash"}, "NIKHash": {"nik", "hash"}, "nikHash": {"nik", "hash"},
		"noKK": {"no", "kk"}, "card-serial": {"card", "serial"}, "HTTPServer2Name": {"http", "server2", "name"},
		"": nil, "__": nil, "tanggal lahir": {"tanggal", "lahir"},
	} {
		require.Equal(t, want, words(k), k)
	}
}

type address struct {
	Street string `json:"jalan"`
	City   string
}

type holder struct {
	NIKHash  string            `json:"subject_key"`
	FullName string            `json:"nama"`
	Kind     string            `json:"kind"`
	Home     *address          `json:"home_address"`
	Work     address           `json:"work"`
	Family   []member          `json:"family"`
	Extra    map[string]string `json:"extra"`
	When     time.Time         `json:"when"`
	IP       net.IP            `json:"ip"`
	Skip     string            `json:"-"`
	hidden   string
	member
}

type member struct {
	Relation string `json:"relation"`
	NoKK     string `json:"no_kk"`
}

// Personal data is redacted however deep it is: maps in slices in maps,
// struct fields by Go name or JSON name, through pointers, embedded
// structs inline.
func TestRedactNested(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h := holder{
		NIKHash: "hash-3201", FullName: "Budi Santoso", Kind: "KPE", Home: &address{Street: "Jl. Merdeka", City: "Bogor"},
		Work:   address{Street: "Jl. Veteran", City: "Jakarta"},
		Family: []member{{Relation: "istri", NoKK: "3201-KK"}},
		Extra:  map[string]string{"bpjs": "0001234", "phone_number": "0812", "service": "askes"},
		When:   when, IP: net.ParseIP("10.0.0.5"), Skip: "skipped", hidden: "h",
		member: member{Relation: "self", NoKK: "3201-KK-2"},
	}
	log.Info("read",
		"holder", h,
		"ptr", &h,
		"rows", []map[string]any{{"reader_name": "ACS ACR39U 00", "holder_name": "Siti", "nested": map[string]any{"nik_hash": "hash-9"}}},
		"ids", map[int]map[string]string{1: {"no_kk": "3201-KK-3", "state": "ok"}},
		"arr", [2]any{map[string]string{"alamat": "Jl. Sudirman"}, "plain"},
		"any", any(map[string]any{"list": []any{map[string]string{"email": "budi@example.id"}}}),
		"reader_name", "Gemalto 00",
		"service", "taspen",
		"err", errors.New("card error"),
	)
	out := buf.String()
	for _, secret := range []string{"hash-3201", "Budi", "Merdeka", "Bogor", "3201-KK", "0001234", "0812", "Siti", "hash-9",
		"Sudirman", "budi@example", "skipped"} {
		require.NotContains(t, out, secret)
	}
	for _, kept := range []string{`"reader_name":"ACS ACR39U 00"`, `"reader_name":"Gemalto 00"`, `"service":"taspen"`, `"service":"askes"`,
		`"kind":"KPE"`, `"relation":"istri"`, `"relation":"self"`, `"City":"Jakarta"`, `"jalan":"Jl. Veteran"`,
		`"when":"2025-01-02T03:04:05Z"`, `"ip":"10.0.0.5"`, `"state":"ok"`, `"plain"`, `"err":"card error"`} {
		require.Contains(t, out, kept)
	}
	require.Contains(t, out, `"subject_key":"[redacted]"`, "by Go name NIKHash")
	require.Contains(t, out, `"nama":"[redacted]"`)
	require.Contains(t, out, `"home_address":"[redacted]"`)
	require.Contains(t, out, `"no_kk":"[redacted]"`)
	require.NotContains(t, out, "hidden")
}

// requireSameRecord: the JSON log lines a and b are the same but for
// their time.
func requireSameRecord(t *testing.T, a, b string) {
	t.Helper()
	withoutTime := func(s string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m))
		delete(m, "time")
		return m
	}
	require.Equal(t, withoutTime(a), withoutTime(b))
}

// Values with nothing personal are logged as they were (same types).
func TestRedactLeavesOthers(t *testing.T) {
	type point struct{ X, Y int }
	var a, b bytes.Buffer
	plain := slog.New(slog.NewJSONHandler(&a, nil))
	red := slog.New(Redact(slog.NewJSONHandler(&b, nil)))
	args := []any{"p", point{1, 2}, "ps", []point{{3, 4}}, "m", map[string]int{"b": 1, "a": 2}, "bytes", []byte("xy"),
		"nilp", (*point)(nil), "nilm", map[string]any(nil), "d", time.Second, "keys", []string{"log.level"}}
	plain.Info("x", args...)
	red.Info("x", args...)
	requireSameRecord(t, a.String(), b.String())
	require.Contains(t, b.String(), `"p":{"X":1,"Y":2}`)
}

type loop struct {
	Next *loop
	Name string
}

// A cycle is cut at the depth bound, redacted rather than followed.
func TestRedactCycle(t *testing.T) {
	var buf bytes.Buffer
	l := &loop{Name: "Budi"}
	l.Next = l
	slog.New(Redact(slog.NewJSONHandler(&buf, nil))).Info("x", "l", l, "m", map[string]any{"deep": map[string]any{"deeper": l}})
	require.NotContains(t, buf.String(), "Budi")
}

// hider hides its fields behind a plain value.
type hider struct{ Name, NIK string }

func (h hider) LogValue() slog.Value { return slog.StringValue("hider(hidden)") }

// hiderAny resolves to a value of another type, which is redacted in turn.
type hiderAny struct{ NIK string }

func (h hiderAny) LogValue() slog.Value {
	return slog.AnyValue(map[string]string{"nik": h.NIK, "state": "resolved"})
}

// A LogValuer nested in a map, a slice or a struct is logged as its
// LogValue, as at the top level, not as its raw fields.
func TestRedactNestedLogValuer(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	h := hider{Name: "Budi Contoh", NIK: "fake-nik-0001"}
	type box struct{ V any }
	log.Info("x",
		"top", h,
		"m", map[string]any{"v": h},
		"s", []any{h, &h},
		"st", box{V: h},
		"a", map[string]any{"v": hiderAny{NIK: "fake-nik-0002"}},
	)
	out := buf.String()
	for _, secret := range []string{"Budi", "fake-nik-0001", "fake-nik-0002"} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, `"top":"hider(hidden)"`)
	require.Contains(t, out, `"m":{"v":"hider(hidden)"}`)
	require.Contains(t, out, `"s":["hider(hidden)","hider(hidden)"]`)
	require.Contains(t, out, `"st":{"V":"hider(hidden)"}`)
	require.Contains(t, out, `"a":{"v":{"nik":"[redacted]","state":"resolved"}}`)
}

func TestIsPersonalIdentifiers(t *testing.T) {
	for _, k := range []string{
		"id_pns", "IDPNS", "idPns", "nomor_id_pns", "taspen", "no_taspen", "nomorTaspen", "taperum", "TaperumStatus",
		"ktp_number", "no_ktp", "nomor_ktp", "ktp", "card_number", "cardNumber", "CARDNUMBER", "card_no", "nomor_kartu",
		"nomor_induk", "NomorInduk", "no_induk", "ibu_kandung", "nama_ibu_kandung", "mother", "mothers_maiden_name",
		"ibu", "tambahan_card", "TambahanCard", "kpe_tambahan", "chip_serial", "ChipSerial", "card_serial_hex",
	} {
		require.True(t, IsPersonal(k), k)
	}
	for _, k := range []string{
		"serial", "sam_serial", "SAMSerial", "reader", "reader_name", "ktpel", "KTPel", "card", "card_kind",
		"no_card", "card_not_found", "counter", "sam_counter", "record", "seq", "gap", "problem", "state",
	} {
		require.False(t, IsPersonal(k), k)
	}
}

// A string of exactly 16 or 18 digits (a NIK's or a NIP's shape) is
// redacted under any key, however nested, but a SAM serial (16 hex
// digits, which may all be decimal) is kept under a serial key.
func TestRedactDigitStrings(t *testing.T) {
	type note struct {
		Ref    string
		Serial string `json:"serial"`
	}
	type card struct {
		Serial string `json:"card_serial"`
	}
	type id string
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewJSONHandler(&buf, nil)))
	log.Info("x",
		"ref", "1234567890123456",
		"other", "123456789012345678",
		"typed", id("6543210987654321"),
		slog.Group("g", "v", "1111222233334444"),
		"m", map[string]any{"v": "2222333344445555", "list": []string{"3333444455556666", "kept"}},
		"st", note{Ref: "4444555566667777", Serial: "0100000000000000"},
		"serial", "5357000000000007",
		"sam_serial", "0200000000000000",
		"card", card{Serial: "0000000000000101"},
		"d15", "123456789012345", "d17", "12345678901234567", "d19", "1234567890123456789",
		"hex16", "53414D0000000001", "spaced", "1234 5678 9012 3456",
	)
	out := buf.String()
	for _, secret := range []string{"1234567890123456\"", "123456789012345678\"", "6543210987654321", "1111222233334444",
		"2222333344445555", "3333444455556666", "4444555566667777"} {
		require.NotContains(t, out, secret)
	}
	for _, kept := range []string{`"ref":"[redacted]"`, `"other":"[redacted]"`, `"typed":"[redacted]"`, `"g":{"v":"[redacted]"}`,
		`"kept"`, `"serial":"0100000000000000"`, `"serial":"5357000000000007"`, `"sam_serial":"0200000000000000"`,
		`"d15":"123456789012345"`, `"d17":"12345678901234567"`, `"d19":"1234567890123456789"`,
		`"hex16":"53414D0000000001"`, `"spaced":"1234 5678 9012 3456"`, `"card":{"card_serial":"[redacted]"}`} {
		require.Contains(t, out, kept)
	}
}

// What the agent logs to run (see the log calls in agent/, sync/ and
// apdu/pcsc) goes through unchanged: reader names, SAM serials, counters,
// record IDs, terminal IDs, services, error codes, durations, addresses.
func TestRedactKeepsOperational(t *testing.T) {
	var a, b bytes.Buffer
	plain := slog.New(slog.NewJSONHandler(&a, nil))
	red := slog.New(Redact(slog.NewJSONHandler(&b, nil)))
	args := []any{
		"reader", "ACS ACR39U ICC Reader 00 00", "serial", "5357000000000007", "counter", uint32(4242),
		"sam_counter", uint32(17), "last_record_counter", uint32(15), "gap", uint32(2),
		"record", "0123456789abcdef0123456789abcdef", "terminal", "PKM-BOGOR-01", "version", "1.4.2",
		"service", "taspen", "code", "sam-counter", "problem", "sam-blocked", "part", "sync",
		"trigger", "sighup", "applied", []string{"log.level", "services"}, "keys", []string{"sync.url"},
		"accepted", 12, "seq", int64(1234567890123456), "reason", "duplicate", "retry_in", 1500 * time.Millisecond,
		"skew", "3m0s", "grace", 10 * time.Second, "addr", "127.0.0.1:7780", "host", "evil.example", "path", "/v1/card",
		"origin", "https://sis.example.go.id", "kind", "kpe-tambahan", "verdict", "genuine", "checks", []string{"sod", "dg1"},
		"atr", "3B8F8001804F0CA0000003060300030000000068", "state", "0x22", "was_present", true, "op", "transmit",
		"file", "/etc/kpe-agent/agent.yaml", "records", 3, "err", errors.New("pcsc: transmit: card removed"),
	}
	plain.Info("x", args...)
	red.Info("x", args...)
	requireSameRecord(t, a.String(), b.String())
	require.NotContains(t, b.String(), Redacted)
}
