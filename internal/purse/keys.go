package purse

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"kpe-agent/internal/strictjson"
)

// Keys are the purse masters the back office checks card proofs with:
// the same debit and credit masters the SAMs hold (16 bytes each).
type Keys struct {
	Debit, Credit []byte
}

// Master is the master of kind k (nil for an unknown kind).
func (k *Keys) Master(kind Kind) []byte {
	switch kind {
	case Debit:
		return k.Debit
	case Credit:
		return k.Credit
	}
	return nil
}

// Errors of the purse keys file.
var (
	// ErrKeysFile: the file is not a purse keys file (JSON, fields,
	// hex, lengths).
	ErrKeysFile = errors.New("purse: malformed purse keys file")
	// ErrKeysMode: the file's group or others may read or write it.
	ErrKeysMode = errors.New("purse: purse keys file readable by others")
)

// MaxKeysFile bounds the file's size: anything larger is not a keys file.
const MaxKeysFile = 4096

type keysJSON struct {
	Debit  string `json:"debit_master"`
	Credit string `json:"credit_master"`
}

// ParseKeys reads a purse keys file's content: exactly
// {"debit_master": "<32 hex>", "credit_master": "<32 hex>"}, strict
// (internal/strictjson: no unknown, duplicate or case-folded keys, no
// trailing data). Errors wrap ErrKeysFile.
func ParseKeys(raw []byte) (*Keys, error) {
	if len(raw) > MaxKeysFile {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrKeysFile, len(raw), MaxKeysFile)
	}
	var j keysJSON
	if err := strictjson.Decode(raw, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysFile, err)
	}
	k := &Keys{}
	for _, f := range []struct {
		name, v string
		out     *[]byte
	}{{"debit_master", j.Debit, &k.Debit}, {"credit_master", j.Credit, &k.Credit}} {
		if len(f.v) != 32 {
			return nil, fmt.Errorf("%w: %s has %d characters, want 32 hex digits", ErrKeysFile, f.name, len(f.v))
		}
		b, err := hex.DecodeString(f.v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not hex", ErrKeysFile, f.name)
		}
		*f.out = b
	}
	return k, nil
}

// LoadKeys reads the purse keys file at path. It refuses a file its
// group or others may access (mode & 0o077, ErrKeysMode): the masters
// make card keys. For the lab's testdata file use LoadLabKeys.
func LoadKeys(path string) (*Keys, error) { return loadKeys(path, true) }

// LoadLabKeys reads a purse keys file without the mode check: for the
// lab's masters (testdata/cards/lab/trust/purse-keys.json), which are
// public anyway.
func LoadLabKeys(path string) (*Keys, error) { return loadKeys(path, false) }

func loadKeys(path string, strictMode bool) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("purse keys: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("purse keys: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeysFile, path)
	}
	if perm := info.Mode().Perm(); strictMode && runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeysMode, path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("purse keys: %w", err)
	}
	k, err := ParseKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
