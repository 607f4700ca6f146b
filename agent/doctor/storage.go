package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"kpe-agent/sync/outbox"
)

// Disk thresholds at the outbox's directory.
const (
	DiskWarnBytes   = 100 << 20
	DiskWarnPercent = 5
	DiskFailBytes   = 20 << 20
)

// existingDir is the outbox's directory, or its nearest existing parent
// (the agent creates the directory on its first start).
func existingDir(p string) string {
	d := filepath.Dir(p)
	for {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return d
		}
		d = parent
	}
}

func mb(n uint64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

func (r *run) checkDisk() Finding {
	f := Finding{ID: CheckDisk}
	dir := existingDir(r.cfg.Outbox.Path)
	free, total, err := diskSpace(dir)
	if err != nil {
		f.Status, f.Code, f.Detail = Skip, "unknown", fmt.Sprintf("%s: %v", dir, err)
		f.Message = tf("Tidak diperiksa: ruang disk tidak dapat diukur.", "Not checked: free disk space cannot be measured.")
		return f
	}
	pct := 100.0
	if total > 0 {
		pct = float64(free) * 100 / float64(total)
	}
	f.Detail = fmt.Sprintf("%s: %s free of %s (%.1f %%)", dir, mb(free), mb(total), pct)
	action := tf("Kosongkan ruang disk di %s (hapus berkas yang tidak perlu, kosongkan Recycle Bin/tempat sampah, log lama). Outbox membutuhkan ruang untuk mencatat transaksi.",
		"Free disk space at %s (delete files not needed, empty the recycle bin, old logs). The outbox needs room to record transactions.", dir)
	switch {
	case free < DiskFailBytes:
		f.Status, f.Code = Fail, "full"
		f.Message = tf("Ruang disk hampir habis: sisa %s. Transaksi baru dapat gagal dicatat.", "The disk is almost full: %s left. New transactions may fail to be recorded.", mb(free))
		f.Action = action
	case free < DiskWarnBytes || pct < DiskWarnPercent:
		f.Status, f.Code = Warn, "low"
		f.Message = tf("Ruang disk tinggal sedikit: sisa %s (%.1f %%).", "Disk space is low: %s left (%.1f %%).", mb(free), pct)
		f.Action = action
	default:
		f.Status, f.Code = OK, "enough"
		f.Message = tf("Ruang disk cukup: sisa %s.", "Enough disk space: %s free.", mb(free))
	}
	return f
}

// usage is the outbox's state from the agent or from the file.
type usage struct {
	pending, sending, dead int
	used                   float64
	oldest                 time.Duration
	movedAside             []string
	source                 string
}

func (r *run) checkOutbox(ctx context.Context, ag *agentState) {
	path := r.cfg.Outbox.Path
	var u usage
	var skipDetail string
	switch {
	case ag.queue != nil:
		q := ag.queue
		u = usage{pending: q.Pending, sending: q.Sending, dead: q.Dead, used: q.Used,
			oldest: time.Duration(q.OldestUnsynced * float64(time.Second)), source: "from the agent"}
		u.movedAside = movedAside(path)
	case ag.running:
		skipDetail = "the running agent holds the outbox"
		if ag.queueErr != nil {
			skipDetail += "; agent: " + ag.queueErr.Error()
		}
	default:
		st, err := bounded(ctx, r.o.CheckTimeout, func(context.Context) (outbox.Stats, error) {
			ob, err := outbox.Open(path, outbox.Options{ReadOnly: true, OpenTimeout: time.Second,
				MaxRecords: r.cfg.Outbox.MaxRecords, MaxAge: r.cfg.Outbox.MaxAge})
			if err != nil {
				return outbox.Stats{}, err
			}
			defer ob.Close()
			return ob.Stats()
		})
		switch {
		case errors.Is(err, outbox.ErrNoOutbox):
			r.add(Finding{ID: CheckOutbox, Status: OK, Code: "none-yet", Detail: path + " does not exist: the agent creates it on its first start",
				Message: tf("Outbox belum ada (dibuat agen saat pertama berjalan).", "No outbox yet (the agent creates it when it first runs).")})
			return
		case errors.Is(err, outbox.ErrLocked):
			skipDetail = "the outbox is locked by another process (the agent starting?)"
		case errors.Is(err, outbox.ErrDamaged), errors.Is(err, outbox.ErrCorrupt):
			r.add(Finding{ID: CheckOutbox, Status: Fail, Code: "damaged", Detail: fmt.Sprintf("%s: %v", path, err),
				Message: tf("Berkas outbox rusak.", "The outbox file is damaged."),
				Action: tf("Saat mulai, agen memindahkan berkas rusak dan membuat outbox baru: mulai agen. Lalu pulihkan catatannya: kpectl queue salvage %s.corrupt-… --out BARU.db (agen dihentikan), dan laporkan ke kantor pusat.",
					"When it starts, the agent moves the damaged file aside and starts a new outbox: start the agent. Then recover the records: kpectl queue salvage %s.corrupt-… --out NEW.db (agent stopped), and tell the back office.", path)})
			return
		case err != nil:
			r.add(Finding{ID: CheckOutbox, Status: Warn, Code: "unreadable", Detail: fmt.Sprintf("%s: %v", path, err),
				Message: tf("Outbox tidak dapat dibaca.", "The outbox cannot be read."),
				Action:  tf("Jalankan kpectl doctor sebagai root (sudo), atau periksa outbox.path di konfigurasi.", "Run kpectl doctor as root (sudo), or check outbox.path in the configuration.")})
			return
		default:
			u = usage{pending: st.Pending, sending: st.Sending, dead: st.Dead, used: st.Used(), oldest: st.OldestUnsynced,
				movedAside: st.MovedAside, source: "read-only from the file"}
		}
	}
	if skipDetail != "" {
		r.add(Finding{ID: CheckOutbox, Status: Skip, Code: "agent-holds-outbox", Detail: skipDetail,
			Message: tf("Tidak diperiksa: outbox dipegang agen yang sedang berjalan.", "Not checked: the running agent holds the outbox."),
			Action:  tf("Jalankan kpectl doctor sebagai root (sudo) agar outbox diperiksa lewat agen.", "Run kpectl doctor as root (sudo) to check the outbox through the agent.")})
		return
	}
	pct := int(u.used*100 + 0.5)
	f := Finding{ID: CheckOutbox, Detail: fmt.Sprintf("%s (%s): pending %d, sending %d, dead %d, used %.1f %%, oldest unsynced %v",
		path, u.source, u.pending, u.sending, u.dead, u.used*100, u.oldest.Round(time.Second))}
	switch {
	case u.used >= 1:
		f.Status, f.Code = Fail, "full"
		f.Message = tf("Outbox PENUH: terminal menolak catatan baru sampai tersinkron ke kantor pusat.", "The outbox is FULL: the terminal refuses new records until they are synced to the back office.")
		f.Action = tf("Segera pulihkan koneksi ke kantor pusat (temuan backoffice), lalu kirim: kpectl sync now.", "Restore the connection to the back office now (the backoffice finding), then send: kpectl sync now.")
	case u.used >= 0.8:
		f.Status, f.Code = Warn, "filling"
		f.Message = tf("Outbox terisi %d %%: catatan menumpuk karena belum terkirim ke kantor pusat.", "The outbox is %d %% full: records pile up because they are not sent to the back office.", pct)
		f.Action = tf("Periksa koneksi ke kantor pusat (temuan backoffice), lalu kirim: kpectl sync now.", "Check the connection to the back office (the backoffice finding), then send: kpectl sync now.")
	default:
		f.Status, f.Code = OK, "healthy"
		f.Message = tf("Outbox sehat: %d catatan menunggu dikirim.", "The outbox is healthy: %d record(s) waiting to be sent.", u.pending+u.sending)
	}
	r.add(f)
	if u.dead > 0 {
		r.add(Finding{ID: CheckOutbox + "-dead", Status: Warn, Code: "dead", Detail: fmt.Sprintf("%d record(s) rejected by the back office", u.dead),
			Message: tf("%d catatan ditolak kantor pusat (dead).", "%d record(s) were rejected by the back office (dead).", u.dead),
			Action: tf("Lihat alasannya: kpectl queue list --state dead. Setelah penyebabnya diperbaiki (mis. terminal didaftarkan), kirim ulang: hentikan agen, kpectl queue retry --all.",
				"See why: kpectl queue list --state dead. Once the cause is fixed (e.g. the terminal is registered), send them again: stop the agent, kpectl queue retry --all.")})
	}
	if len(u.movedAside) > 0 {
		sort.Strings(u.movedAside)
		first := filepath.Join(filepath.Dir(path), filepath.Base(u.movedAside[0]))
		r.add(Finding{ID: CheckOutbox + "-damaged", Status: Warn, Code: "moved-aside", Detail: fmt.Sprintf("damaged outbox file(s) moved aside: %v", u.movedAside),
			Message: tf("Berkas outbox rusak telah dipindahkan (%d); catatannya belum dipulihkan.", "Damaged outbox file(s) were moved aside (%d); their records are not recovered yet.", len(u.movedAside)),
			Action: tf("Pulihkan catatannya: kpectl queue salvage %s --out BARU.db (agen dihentikan), lalu laporkan ke kantor pusat.",
				"Recover the records: kpectl queue salvage %s --out NEW.db (agent stopped), then tell the back office.", first)})
	}
}

// movedAside lists the damaged files the agent moved aside next to the
// outbox (path.corrupt-<time>).
func movedAside(path string) []string {
	m, _ := filepath.Glob(path + ".corrupt-*")
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}
