package outbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	bolt "go.etcd.io/bbolt"
)

// CompactTempSuffix names the file Compact writes next to the outbox
// before it replaces the outbox with it: outbox.db.compact-tmp.
const CompactTempSuffix = ".compact-tmp"

// CompactSteps are the points of a compaction, in order (the test hook
// sees each): the outbox is locked and checked; the temporary file is
// created; everything is copied into it; it is fsynced, checked and
// closed; it is renamed over the outbox; the directory is fsynced.
var CompactSteps = []string{"locked", "temp-created", "copied", "synced", "renamed", "done"}

// compactHook, when set (tests), is called at each of CompactSteps.
var compactHook func(step string)

func compactStep(step string) {
	if compactHook != nil {
		compactHook(step)
	}
}

// compactTxSize bounds one transaction of the copy (bbolt commits the
// copy in parts of about this size), so memory stays bounded.
const compactTxSize = 4 << 20

// CompactResult says what Compact did.
type CompactResult struct {
	Before, After int64 // the file's size in bytes
	// RemovedTemp: a temporary file an interrupted compaction left was
	// removed first.
	RemovedTemp bool
}

// Compact gives the free pages of the outbox file back to the file system:
// bbolt reuses freed pages but never shrinks its file. It needs the outbox
// to itself (an agent holding it makes it ErrLocked after OpenTimeout),
// refuses a missing file (ErrNoOutbox; nothing is created) and a damaged
// one (ErrDamaged; it is not moved aside). Everything in the file is
// copied (bbolt's Compact: every bucket, key and value, and the record
// sequence) into path+CompactTempSuffix, which is fsynced, checked and
// then renamed over path while the lock is still held; the directory is
// fsynced. A kill at any point leaves the old file or the new one at
// path, each complete; a temporary file left by an interrupted run is
// removed by the next. Records being sent stay in sending (the agent's
// next Open returns them to pending).
//
// On Windows a file cannot be renamed over while it is open, so there the
// outbox is closed, and its lock released, just before the rename; an
// agent that opens it in that instant makes the rename fail, and the old
// file stays.
func Compact(path string, o Options) (CompactResult, error) {
	o.defaults()
	o.ReadOnly = false
	var res CompactResult
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("%w: %w", ErrNoOutbox, err)
		}
		return res, fmt.Errorf("outbox: %w", err)
	}
	res.Before = fi.Size()
	src, err := openChecked(path, o)
	if err != nil {
		var pe *fs.PathError
		if errors.Is(err, ErrLocked) || errors.Is(err, ErrDamaged) || errors.As(err, &pe) {
			return res, err
		}
		return res, fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
	}
	srcOpen := true
	defer func() {
		if srcOpen {
			src.Close()
		}
	}()
	if err := src.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bRecords, bUnsynced, bDead, bMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: %s has no %q bucket: not an outbox", ErrDamaged, path, b)
			}
		}
		return nil
	}); err != nil {
		return res, err
	}
	// Only a compaction writes the temporary file, and only while it holds
	// the lock this one now holds: what is there was left by a killed one.
	tmp := path + CompactTempSuffix
	switch err := os.Remove(tmp); {
	case err == nil:
		res.RemovedTemp = true
	case !errors.Is(err, fs.ErrNotExist):
		return res, fmt.Errorf("outbox: removing the temporary file of an interrupted compaction: %w", err)
	}
	compactStep("locked")

	// bbolt's commits without fsync: the one Sync below covers them all
	// before the file is used.
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{NoSync: true})
	if err != nil {
		return res, fmt.Errorf("outbox: compact: %w", err)
	}
	dstOpen := true
	fail := func(err error) (CompactResult, error) {
		if dstOpen {
			dst.Close()
		}
		os.Remove(tmp)
		return res, fmt.Errorf("outbox: compact: %w", err)
	}
	if err := sameOwner(tmp, fi); err != nil {
		return fail(err)
	}
	compactStep("temp-created")
	if err := bolt.Compact(dst, src, compactTxSize); err != nil {
		return fail(err)
	}
	compactStep("copied")
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	var cerr error
	dst.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			cerr = errors.Join(cerr, e)
		}
		return nil
	})
	if cerr != nil {
		return fail(fmt.Errorf("consistency check of the copy: %w", cerr))
	}
	dstOpen = false
	if err := dst.Close(); err != nil {
		return fail(err)
	}
	compactStep("synced")
	if runtime.GOOS == "windows" {
		srcOpen = false
		src.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	compactStep("renamed")
	syncDir(filepath.Dir(path))
	compactStep("done")
	if fi, err := os.Stat(path); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}
