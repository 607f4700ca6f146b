package config

import (
	"reflect"
	"sort"
	"strings"
	"time"
)

// kind is the type of a leaf key.
type kind int

const (
	kindInvalid kind = iota
	kindString
	kindBool
	kindInt
	kindDuration
	kindList // []string; comma-separated in KPE_* and --set
	kindMap  // map[string]string (messages.id, messages.en): free-form keys
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindBool:
		return "boolean"
	case kindInt:
		return "integer"
	case kindDuration:
		return "duration"
	case kindList:
		return "list"
	case kindMap:
		return "mapping"
	}
	return "invalid"
}

// leaf is one key of the schema, derived from Config's mapstructure tags.
type leaf struct {
	key   string // sync.client_cert
	env   string // KPE_SYNC_CLIENT_CERT ("" for maps: not settable from the environment)
	kind  kind
	index []int // field path in Config
}

// schema is Config's key tree.
type schema struct {
	leaves   map[string]*leaf    // by dotted key
	groups   map[string][]string // group key ("" for the root) → child names, sorted
	byEnv    map[string]*leaf    // by environment variable
	ordered  []*leaf             // in struct order
	problems []string            // fields of a type the loader does not know (a test keeps this empty)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	schemaKeys   = buildSchema()
)

func buildSchema() *schema {
	s := &schema{
		leaves: map[string]*leaf{},
		groups: map[string][]string{},
		byEnv:  map[string]*leaf{},
	}
	s.walk(reflect.TypeFor[Config](), "", nil)
	for g := range s.groups {
		sort.Strings(s.groups[g])
	}
	for _, l := range s.ordered {
		if l.kind == kindMap {
			continue
		}
		l.env = envPrefix + strings.ToUpper(strings.ReplaceAll(l.key, ".", "_"))
		if other, dup := s.byEnv[l.env]; dup {
			s.problems = append(s.problems, l.key+" and "+other.key+" share "+l.env)
		}
		s.byEnv[l.env] = l
	}
	return s
}

func (s *schema) walk(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" || name == "" || !f.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		idx := append(append([]int(nil), index...), i)
		s.groups[prefix] = append(s.groups[prefix], name)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			s.groups[key] = nil
			s.walk(f.Type, key, idx)
			continue
		}
		k := kindOf(f.Type)
		if k == kindInvalid {
			s.problems = append(s.problems, key+": unsupported type "+f.Type.String())
		}
		l := &leaf{key: key, kind: k, index: idx}
		s.leaves[key] = l
		s.ordered = append(s.ordered, l)
	}
}

func kindOf(t reflect.Type) kind {
	switch {
	case t == durationType:
		return kindDuration
	case t.Kind() == reflect.String:
		return kindString
	case t.Kind() == reflect.Bool:
		return kindBool
	case t.Kind() == reflect.Int:
		return kindInt
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return kindList
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return kindMap
	}
	return kindInvalid
}

// isGroup reports whether key names a group of keys (sync, messages).
func (s *schema) isGroup(key string) bool {
	_, ok := s.groups[key]
	return ok && key != ""
}

// field returns the value of l's field in c.
func (l *leaf) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(l.index)
}

// suggest returns the Want of an unknown key under group: the closest
// known name, if one is close, and the names the group accepts.
func (s *schema) suggest(group, name string) string {
	names := s.groups[group]
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(name), n); d < bestD {
			best, bestD = n, d
		}
	}
	w := "one of the keys of " + group + ": " + strings.Join(names, ", ")
	if group == "" {
		w = "one of the top-level keys: " + strings.Join(names, ", ")
	}
	if best != "" {
		w += " (did you mean " + qualify(group, best) + "?)"
	}
	return w
}

func qualify(group, name string) string {
	if group == "" {
		return name
	}
	return group + "." + name
}

// editDistance is the Levenshtein distance of short ASCII strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
