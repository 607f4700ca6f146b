package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Source says where a configuration comes from. Precedence, highest
// first: Set, then Environ's KPE_* variables, then File, then defaults.
type Source struct {
	File    string            // YAML file; "" for none
	Set     map[string]string // key=value overrides (flags), lists comma-separated
	Environ []string          // os.Environ(): KPE_SYNC_URL sets sync.url
}

// maxFileSize bounds the configuration file.
const maxFileSize = 1 << 20

// Load reads, merges and validates a configuration.
//
// Keys come from, highest precedence first: src.Set (the --set flags; a
// list is comma-separated, messages.id.<code> sets one message), the
// KPE_* variables of src.Environ (KPE_ + the key upper-cased with dots
// as underscores: KPE_SYNC_CLIENT_CERT sets sync.client_cert; an empty
// variable counts as unset; KPE_* variables that name no key are
// ignored, as other tools use some), the YAML file src.File ("" for
// none; a file named but missing is an error), then the defaults.
//
// Relative paths (sam.*, trust.*, outbox.path, sync.client_cert,
// sync.client_key, sync.ca, api.token_file, api.tls_cert_file,
// api.tls_key_file, log.file) are resolved
// against the file's directory when they come from the file, against
// the working directory otherwise.
//
// Every problem is reported, joined (errors.Join), each an *Error
// wrapping ErrInvalid: unknown keys, values of the wrong type, values
// out of range. The returned Config is never modified afterwards.
func Load(src Source) (*Config, error) {
	var (
		abs  string
		data []byte
	)
	if src.File != "" {
		var err error
		if abs, err = filepath.Abs(src.File); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if data, err = readConfigFile(abs); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return load(src, abs, data)
}

func readConfigFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a configuration file", name, maxFileSize)
	}
	return data, nil
}

// origin is where a key's value came from.
type origin struct {
	where string // file path, KPE_X or "--set x"; "" for a default
	line  int
}

// loader is the state of one Load.
type loader struct {
	file string // absolute path of the file, "" for none
	errs []error
	bad  map[string]bool // keys whose value was found invalid

	fileBroken bool           // the file is not YAML or not a mapping
	parseErr   map[string]int // key → highest layer whose value could not be parsed

	fileLayer, envLayer map[string]any // nested maps for viper
	setLayer            map[string]any // dotted key → value
	origins             [3]map[string]origin
}

const (
	layerFile = iota
	layerEnv
	layerSet
)

// load is Load once the file is read (data; abs is its absolute path,
// "" for no file).
func load(src Source, abs string, data []byte) (*Config, error) {
	l := &loader{
		file:      abs,
		bad:       map[string]bool{},
		parseErr:  map[string]int{},
		fileLayer: map[string]any{},
		envLayer:  map[string]any{},
		setLayer:  map[string]any{},
	}
	for i := range l.origins {
		l.origins[i] = map[string]origin{}
	}
	if len(schemaKeys.problems) > 0 {
		return nil, fmt.Errorf("config: schema: %s", strings.Join(schemaKeys.problems, "; "))
	}
	if abs != "" {
		l.parseFile(data)
	}
	l.parseEnv(src.Environ)
	l.parseSet(src.Set)

	v := viper.New()
	for k, d := range defaults() {
		v.SetDefault(k, d)
	}
	if err := v.MergeConfigMap(l.fileLayer); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := v.MergeConfigMap(l.envLayer); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for k, val := range l.setLayer {
		v.Set(k, val)
	}
	c := new(Config)
	if err := v.UnmarshalExact(c); err != nil {
		// The layers hold only typed values of known keys: a bug.
		return nil, fmt.Errorf("config: decoding: %w", err)
	}
	c.File = abs
	if !l.fileBroken {
		l.validate(c) // else every key would look missing
	}
	if len(l.errs) > 0 {
		return nil, l.joined()
	}
	return c, nil
}

// maxErrors bounds the problems listed.
const maxErrors = 50

func (l *loader) joined() error {
	errs := l.errs
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], fmt.Errorf("config: %w: %d more problems not shown", ErrInvalid, more))
	}
	return errors.Join(errs...)
}

// fail records a problem with a value as written (its parsing).
func (l *loader) fail(e *Error) {
	l.errs = append(l.errs, e)
}

// parseFailed notes that a value of key from layer could not be used.
func (l *loader) parseFailed(key string, layer int) {
	if old, ok := l.parseErr[key]; !ok || layer > old {
		l.parseErr[key] = layer
	}
}

// originOf is where key's value came from: the highest layer setting
// it, else the file (a default or a missing key is the file's business).
func (l *loader) originOf(key string) (origin, int) {
	for i := layerSet; i >= layerFile; i-- {
		if o, ok := l.origins[i][key]; ok {
			return o, i
		}
	}
	return origin{where: l.file}, -1
}

// invalid records a problem with key's final value, once per key, and
// none when the value meant to win could not be parsed (that was
// reported, and the value checked is not the one written).
func (l *loader) invalid(key, value, reason, want string) {
	o, layer := l.originOf(key)
	if pe, ok := l.parseErr[key]; ok && pe >= layer {
		return
	}
	if l.bad[key] {
		return
	}
	l.bad[key] = true
	l.fail(&Error{File: o.where, Line: o.line, Key: key, Value: value, Reason: reason, Want: want})
}

// ---- the file

func (l *loader) parseFile(data []byte) {
	var doc, next yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return // empty file
	}
	if err == nil {
		// One document only: a second one (after ---) would be ignored
		// by a plain decode, its keys never checked.
		if err = dec.Decode(&next); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			l.fileBroken = true
			l.fail(&Error{File: l.file, Line: next.Line, Reason: "starts a second YAML document (---): a configuration file is one document",
				Want: "one YAML mapping of keys as in configs/agent.yaml (a --- line only at the very top, if at all)"})
		}
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		l.fileBroken = true
		l.fail(&Error{File: l.file, Reason: "is not valid YAML: " + msg, Want: "a YAML mapping of keys as in configs/agent.yaml"})
		return
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return // empty file
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.fileBroken = true
		l.fail(&Error{File: l.file, Line: root.Line, Reason: "is not a mapping of keys", Want: "a YAML mapping of keys as in configs/agent.yaml"})
		return
	}
	l.walkMapping(root, "")
}

// deref follows a YAML alias.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

func (l *loader) fileError(n *yaml.Node, key, value, reason, want string) {
	l.parseFailed(key, layerFile)
	l.fail(&Error{File: l.file, Line: n.Line, Key: key, Value: value, Reason: reason, Want: want})
}

func (l *loader) walkMapping(n *yaml.Node, group string) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := deref(n.Content[i]), deref(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			l.fileError(kn, group, "", "has a key that is "+describe(kn), "key names such as "+strings.Join(schemaKeys.groups[group], ", "))
			continue
		}
		name := kn.Value
		key := qualify(group, name)
		if seen[name] {
			l.fileError(kn, key, "", "appears twice", "each key once")
			continue
		}
		seen[name] = true
		if schemaKeys.isGroup(key) {
			if isNull(vn) {
				continue
			}
			if vn.Kind != yaml.MappingNode {
				l.fileError(vn, key, scalarText(vn), "is "+describe(vn)+", not a group of keys",
					"a mapping of "+strings.Join(schemaKeys.groups[key], ", "))
				continue
			}
			l.walkMapping(vn, key)
			continue
		}
		lf := schemaKeys.leaves[key]
		if lf == nil {
			l.fileError(kn, key, "", unknownReason(group, name), schemaKeys.suggest(group, name))
			continue
		}
		if isNull(vn) {
			continue // null: as if unset
		}
		val, ok := l.fileValue(lf, vn)
		if !ok {
			continue
		}
		put(l.fileLayer, key, val)
		l.origins[layerFile][key] = origin{where: l.file, line: vn.Line}
	}
}

func scalarText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func unknownReason(group, name string) string {
	if lower := strings.ToLower(name); lower != name {
		if _, ok := schemaKeys.leaves[qualify(group, lower)]; ok || schemaKeys.isGroup(qualify(group, lower)) {
			return "unknown key (keys are lower case)"
		}
	}
	return "unknown key"
}

// fileValue converts the YAML value of lf.
func (l *loader) fileValue(lf *leaf, n *yaml.Node) (any, bool) {
	switch lf.kind {
	case kindList:
		if n.Kind != yaml.SequenceNode {
			l.fileError(n, lf.key, scalarText(n), "is "+describe(n)+", not a list", listWant(lf.key))
			return nil, false
		}
		list := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			e = deref(e)
			if e.Kind != yaml.ScalarNode || isNull(e) {
				l.fileError(e, lf.key, "", "has an item that is "+describe(e)+" or empty", listWant(lf.key))
				return nil, false
			}
			list = append(list, e.Value)
		}
		return list, true
	case kindMap:
		if n.Kind != yaml.MappingNode {
			l.fileError(n, lf.key, scalarText(n), "is "+describe(n)+", not a mapping", "code: text pairs such as no-card: \"Silakan masukkan kartu\"")
			return nil, false
		}
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := deref(n.Content[i]), deref(n.Content[i+1])
			code := scalarText(kn)
			key := lf.key + "." + code
			if kn.Kind != yaml.ScalarNode || !messageCode.MatchString(code) {
				l.fileError(kn, key, "", "is not a message code", messageCodeWant)
				continue
			}
			if _, dup := m[code]; dup {
				l.fileError(kn, key, "", "appears twice", "each key once")
				continue
			}
			if vn.Kind != yaml.ScalarNode || isNull(vn) {
				l.fileError(vn, key, "", "is "+describe(vn)+" or empty, not a text", "a message text")
				continue
			}
			m[code] = vn.Value
			l.origins[layerFile][key] = origin{where: l.file, line: vn.Line}
		}
		return m, true
	}
	if n.Kind != yaml.ScalarNode {
		l.fileError(n, lf.key, "", "is "+describe(n)+", not a "+lf.kind.String(), wantOf(lf))
		return nil, false
	}
	val, reason := parseText(lf, n.Value)
	if reason != "" {
		l.fileError(n, lf.key, n.Value, reason, wantOf(lf))
		return nil, false
	}
	if pathKeys[lf.key] {
		val = resolve(filepath.Dir(l.file), val.(string))
	}
	return val, true
}

// ---- environment and flags

func (l *loader) parseEnv(environ []string) {
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || value == "" {
			continue
		}
		lf := schemaKeys.byEnv[name]
		if lf == nil {
			continue // another tool's variable
		}
		if _, dup := seen[name]; dup {
			continue // the first one counts, as with os.Getenv
		}
		seen[name] = true
		o := origin{where: name}
		if val, ok := l.textValue(lf, value, o, layerEnv); ok {
			l.origins[layerEnv][lf.key] = o
			put(l.envLayer, lf.key, val)
		}
	}
}

func (l *loader) parseSet(set map[string]string) {
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, key := range names {
		value := set[key]
		o := origin{where: "--set " + key}
		if code, ok := cutMessageKey(key); ok {
			if !messageCode.MatchString(code) {
				l.fail(&Error{File: o.where, Key: key, Reason: "is not a message code", Want: messageCodeWant})
				continue
			}
			l.origins[layerSet][key] = o
			l.setLayer[key] = value
			continue
		}
		lf := schemaKeys.leaves[key]
		switch {
		case lf != nil && lf.kind == kindMap:
			l.fail(&Error{File: o.where, Key: key, Reason: "is a group of messages", Want: key + ".<code>=text (one message)"})
			continue
		case schemaKeys.isGroup(key):
			l.fail(&Error{File: o.where, Key: key, Reason: "is a group of keys",
				Want: "one of its keys: " + key + "." + strings.Join(schemaKeys.groups[key], ", "+key+".")})
			continue
		case lf == nil:
			group, name := unknownPart(key)
			l.fail(&Error{File: o.where, Key: key, Reason: unknownReason(group, name), Want: schemaKeys.suggest(group, name)})
			continue
		}
		if val, ok := l.textValue(lf, value, o, layerSet); ok {
			l.origins[layerSet][key] = o
			l.setLayer[key] = val
		}
	}
}

// cutMessageKey returns the code of messages.id.<code> or messages.en.<code>.
func cutMessageKey(key string) (code string, ok bool) {
	for _, g := range []string{"messages.id.", "messages.en."} {
		if c, ok := strings.CutPrefix(key, g); ok {
			return c, true
		}
	}
	return "", false
}

// unknownPart returns the first segment of key the schema does not know
// and the group it is in.
func unknownPart(key string) (group, name string) {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		k := qualify(group, p)
		if !schemaKeys.isGroup(k) || i == len(parts)-1 {
			return group, p
		}
		group = k
	}
	return group, key
}

// textValue converts a KPE_* or --set value.
func (l *loader) textValue(lf *leaf, text string, o origin, layer int) (any, bool) {
	val, reason := parseText(lf, text)
	if reason != "" {
		l.parseFailed(lf.key, layer)
		l.fail(&Error{File: o.where, Key: lf.key, Value: text, Reason: reason, Want: wantOf(lf)})
		return nil, false
	}
	if pathKeys[lf.key] {
		val = resolve("", val.(string))
	}
	return val, true
}

// parseText converts a value written as text (a YAML scalar, a variable,
// a flag); reason is "" when it fits.
func parseText(lf *leaf, s string) (any, string) {
	switch lf.kind {
	case kindString:
		return s, ""
	case kindBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, "is not a boolean"
		}
		return b, ""
	case kindInt:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, "is not a whole number"
		}
		return n, ""
	case kindDuration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, "is not a duration"
		}
		return d, ""
	case kindList:
		list := []string{}
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		return list, ""
	}
	return nil, "cannot be set this way"
}

func wantOf(lf *leaf) string {
	switch lf.kind {
	case kindBool:
		return "true or false"
	case kindInt:
		return "a whole number such as " + exampleInt(lf.key)
	case kindDuration:
		return "e.g. 30s or 5m"
	case kindList:
		return listWant(lf.key)
	case kindString:
		return "a text"
	}
	return "a value"
}

func exampleInt(key string) string {
	if d, ok := defaults()[key].(int); ok {
		return strconv.Itoa(d)
	}
	return "10"
}

func listWant(key string) string {
	return "a YAML list such as [a, b] (comma-separated in KPE_" +
		strings.ToUpper(strings.ReplaceAll(key, ".", "_")) + " and --set " + key + "=a,b)"
}

// pathKeys are the keys holding file paths.
var pathKeys = map[string]bool{
	"sam.activation_code_file": true,
	"sam.ktp_secrets_file":     true,
	"sam.nik_key_file":         true,
	"trust.bkn":                true,
	"trust.dukcapil":           true,
	"outbox.path":              true,
	"sync.client_cert":         true,
	"sync.client_key":          true,
	"sync.ca":                  true,
	"api.token_file":           true,
	"api.tls_cert_file":        true,
	"api.tls_key_file":         true,
	"log.file":                 true,
}

// resolve makes p absolute against base ("" for the working directory).
func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if base != "" {
		return filepath.Join(base, p)
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// put stores val at dotted key in a nested map.
func put(m map[string]any, key string, val any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = val
}

var messageCode = regexp.MustCompile(`^[a-z0-9-]+$`)

const messageCodeWant = "a message code of a-z, 0-9 and - (e.g. no-card)"
