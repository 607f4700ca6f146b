package config

// Source says where a configuration comes from. Precedence, highest
// first: Set, then Environ's KPE_* variables, then File, then defaults.
type Source struct {
	File    string            // YAML file; "" for none
	Set     map[string]string // key=value overrides (flags), lists comma-separated
	Environ []string          // os.Environ(): KPE_SYNC_URL sets sync.url
}

// Load reads, merges and validates a configuration.
// (Placeholder: returns nothing useful until the loader lands.)
func Load(src Source) (*Config, error) {
	return &Config{File: src.File}, nil
}
