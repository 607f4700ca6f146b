package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"kpe-agent/agent/api"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
)

// agentState is what the agent check learnt: the later checks ask the
// running agent instead of touching what it holds (the SAM, the outbox).
type agentState struct {
	running  bool
	health   *api.Health      // with details: the token was accepted
	queue    *api.QueueStatus // nil when not available
	queueErr error
}

func (r *run) startAgent() Text {
	if r.goos == "windows" {
		return tf("Jalankan agen sebagai Administrator: sc start kpe-agent (agar otomatis: sc config kpe-agent start= auto), lalu jalankan ulang kpectl doctor.",
			"Start the agent as Administrator: sc start kpe-agent (to start it automatically: sc config kpe-agent start= auto), then run kpectl doctor again.")
	}
	return tf("Jalankan agen: sudo systemctl start kpe-agent (log: journalctl -u kpe-agent), lalu jalankan ulang kpectl doctor.",
		"Start the agent: sudo systemctl start kpe-agent (logs: journalctl -u kpe-agent), then run kpectl doctor again.")
}

func (r *run) checkAgent(ctx context.Context) *agentState {
	st := &agentState{}
	f := Finding{ID: CheckAgent}
	defer func() { r.add(f) }()
	if r.o.Agent == nil {
		f.Status, f.Code, f.Detail = Skip, "no-address", "api.listen is not a valid address: "+r.cfg.API.Listen
		f.Message = tf("Alamat API agen tidak valid.", "The agent's API address is not valid.")
		f.Action = tf("Periksa api.listen di konfigurasi atau -agent.", "Check api.listen in the configuration, or -agent.")
		return st
	}
	c := r.o.Agent
	h, err := bounded(ctx, r.o.CheckTimeout, c.Health)
	if errors.Is(err, api.ErrNotRunning) {
		f.Status, f.Code, f.Detail = Warn, "not-running", err.Error()
		f.Message = tf("Agen tidak berjalan (%s).", "The agent is not running (%s).", c.URL())
		f.Action = r.startAgent()
		return st
	}
	if err != nil {
		f.Status, f.Code, f.Detail = Warn, "error", fmt.Sprintf("%s%s: %v", c.URL(), api.PathHealth, err)
		f.Message = tf("Agen tidak menjawab dengan benar.", "The agent does not answer properly.")
		f.Action = tf("Mulai ulang agen (sudo systemctl restart kpe-agent; Windows: sc stop kpe-agent lalu sc start kpe-agent) dan periksa lognya.",
			"Restart the agent (sudo systemctl restart kpe-agent; Windows: sc stop kpe-agent then sc start kpe-agent) and read its log.")
		return st
	}
	st.running = true
	detail := fmt.Sprintf("%s: status %s", c.URL(), h.Status)
	if h.Version != "" {
		detail += ", version " + h.Version
	}
	if !h.Started.IsZero() {
		detail += ", started " + h.Started.Format("2006-01-02 15:04:05 -0700")
	}
	if h.Terminal != "" {
		detail += ", terminal " + h.Terminal
	}
	f.Detail = detail
	if !c.HasToken() {
		f.Status, f.Code = Warn, "no-token"
		if r.o.TokenErr != nil {
			f.Detail += "; no API token: " + r.o.TokenErr.Error()
		}
		f.Message = tf("Agen berjalan, tetapi token API tidak terbaca: SAM dan outbox tidak dapat diperiksa lewat agen.",
			"The agent runs, but the API token cannot be read: the SAM and the outbox cannot be checked through the agent.")
		f.Action = tf("Jalankan kpectl doctor sebagai root (sudo kpectl doctor) atau beri --token-file BERKAS (bawaan %s).",
			"Run kpectl doctor as root (sudo kpectl doctor) or give --token-file FILE (default %s).", r.cfg.API.TokenFile)
		return st
	}
	q, err := bounded(ctx, r.o.CheckTimeout, c.Queue)
	var ae *api.APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		f.Status, f.Code = Warn, "token-rejected"
		f.Detail += fmt.Sprintf("; the agent refused the token (HTTP %d)", ae.Status)
		f.Message = tf("Agen berjalan, tetapi menolak token API.", "The agent runs, but refuses the API token.")
		f.Action = tf("Pakai token agen ini: --token-file %s (token berubah saat dipasang ulang).",
			"Use this agent's token: --token-file %s (the token changes on reinstall).", r.cfg.API.TokenFile)
		return st
	}
	st.health = &h
	if err == nil {
		st.queue = &q
	}
	st.queueErr = err
	if h.Status != "ok" {
		var codes []string
		for _, p := range h.Problems {
			codes = append(codes, p.Code)
		}
		f.Status, f.Code = Warn, "degraded"
		f.Detail += "; problems: " + strings.Join(codes, ", ")
		f.Message = tf("Agen berjalan dengan masalah: %s.", "The agent runs with problems: %s.", strings.Join(codes, ", "))
		f.Action = tf("Lihat temuan lain di bawah untuk tindakannya.", "See the other findings below for what to do.")
		return st
	}
	f.Status, f.Code = OK, "running"
	f.Message = tf("Agen berjalan.", "The agent is running.")
	return st
}

// pcscChain: the service, then the readers, then the SAM.
func (r *run) pcscChain(ctx context.Context, ag *agentState) {
	readers, ok := r.checkPCSC(ctx)
	if !ok {
		r.add(Finding{ID: CheckReaders, Status: Skip, Code: "no-service", Detail: "the PC/SC service is not usable",
			Message: tf("Tidak diperiksa: layanan kartu pintar tidak tersedia.", "Not checked: the smart-card service is not available.")})
		r.checkSAM(ctx, ag, nil, false)
		return
	}
	r.add(r.checkReaders(readers))
	r.checkSAM(ctx, ag, readers, true)
}

func (r *run) startPCSC() Text {
	switch r.goos {
	case "windows":
		return tf("Jalankan layanan Smart Card (SCardSvr) sebagai Administrator: sc config SCardSvr start= auto lalu sc start SCardSvr. Windows menghentikan layanan ini bila tidak ada pembaca: pasang pembaca kartu dulu, lalu jalankan ulang kpectl doctor.",
			"Start the Smart Card service (SCardSvr) as Administrator: sc config SCardSvr start= auto, then sc start SCardSvr. Windows stops this service when no reader is plugged in: plug in the card reader first, then run kpectl doctor again.")
	case "darwin":
		return tf("Pasang pembaca kartu: layanan kartu pintar macOS mulai saat pembaca terpasang. Lalu jalankan ulang kpectl doctor.",
			"Plug in the card reader: the macOS smart-card service starts when a reader is present. Then run kpectl doctor again.")
	}
	return tf("Jalankan layanan pcscd: sudo systemctl start pcscd (agar otomatis: sudo systemctl enable --now pcscd.socket), lalu jalankan ulang kpectl doctor.",
		"Start the pcscd service: sudo systemctl start pcscd (to start it automatically: sudo systemctl enable --now pcscd.socket), then run kpectl doctor again.")
}

func (r *run) checkPCSC(ctx context.Context) ([]apdu.ReaderInfo, bool) {
	f := Finding{ID: CheckPCSC}
	defer func() { r.add(f) }()
	rs, err := bounded(ctx, r.o.CheckTimeout, func(ctx context.Context) ([]apdu.ReaderInfo, error) {
		tr := pcsc.New(pcsc.Options{})
		defer tr.Close()
		return tr.Readers(ctx)
	})
	service := "pcscd"
	if r.goos == "windows" {
		service = "Smart Card (SCardSvr)"
	}
	switch {
	case errors.Is(err, apdu.ErrNoService):
		f.Status, f.Code, f.Detail = Fail, "no-service", err.Error()
		f.Message = tf("Layanan kartu pintar (%s) tidak berjalan.", "The smart-card service (%s) is not running.", service)
		f.Action = r.startPCSC()
		return nil, false
	case err != nil:
		f.Status, f.Code, f.Detail = Fail, "error", err.Error()
		f.Message = tf("Layanan kartu pintar (%s) tidak dapat dipakai.", "The smart-card service (%s) cannot be used.", service)
		f.Action = r.startPCSC()
		return nil, false
	}
	f.Status, f.Code, f.Detail = OK, "running", fmt.Sprintf("PC/SC context established, %d reader(s)", len(rs))
	f.Message = tf("Layanan kartu pintar (%s) berjalan.", "The smart-card service (%s) is running.", service)
	return rs, true
}

func (r *run) checkReaders(rs []apdu.ReaderInfo) Finding {
	f := Finding{ID: CheckReaders}
	if len(rs) == 0 {
		f.Status, f.Code, f.Detail = Fail, "none", "PC/SC lists no readers"
		f.Message = tf("Tidak ada pembaca kartu terpasang.", "No card reader is connected.")
		if r.goos == "windows" {
			f.Action = tf("Pasang pembaca kartu ke port USB; periksa kabel USB (coba port lain) dan pastikan pembaca tampil di Device Manager (Smart card readers). Lalu jalankan ulang kpectl doctor.",
				"Plug the card reader into a USB port; check the USB cable (try another port) and that the reader shows in Device Manager (Smart card readers). Then run kpectl doctor again.")
		} else {
			f.Action = tf("Pasang pembaca kartu ke port USB; periksa kabel USB (coba port lain). Cek dengan pcsc_scan bahwa pembaca terlihat, lalu jalankan ulang kpectl doctor.",
				"Plug the card reader into a USB port; check the USB cable (try another port). Check with pcsc_scan that the reader shows, then run kpectl doctor again.")
		}
		return f
	}
	var names, exclusive, mute []string
	for _, x := range rs {
		names = append(names, fmt.Sprintf("%q", x.Name))
		if x.Exclusive {
			exclusive = append(exclusive, x.Name)
		}
		if x.Mute {
			mute = append(mute, x.Name)
		}
	}
	f.Detail = fmt.Sprintf("%d reader(s): %s", len(rs), strings.Join(names, ", "))
	switch {
	case len(exclusive) > 0:
		f.Status, f.Code = Warn, "exclusive"
		list := strings.Join(exclusive, ", ")
		f.Detail += "; held exclusively by another program: " + list
		f.Message = tf("Pembaca %s dipakai eksklusif oleh program lain.", "Reader %s is held exclusively by another program.", list)
		f.Action = tf("Tutup program lain yang memakai pembaca itu (aplikasi kartu lain, pcsc_scan, browser dengan modul kartu), lalu jalankan ulang kpectl doctor.",
			"Close the other program using that reader (another card application, pcsc_scan, a browser with a card module), then run kpectl doctor again.")
	case len(mute) > 0:
		f.Status, f.Code = Warn, "mute-card"
		list := strings.Join(mute, ", ")
		f.Detail += "; a card does not answer reset in: " + list
		f.Message = tf("Kartu di pembaca %s tidak menjawab.", "The card in reader %s does not answer.", list)
		f.Action = tf("Cabut dan masukkan kembali kartu itu (chip menghadap benar); bila berulang, kartu atau pembaca rusak.",
			"Take that card out and insert it again (chip facing the right way); if it repeats, the card or the reader is faulty.")
	default:
		f.Status, f.Code = OK, "present"
		f.Message = tf("%d pembaca kartu terpasang.", "%d card reader(s) connected.", len(rs))
	}
	return f
}

var (
	samMissingAction = tf("Masukkan SAM ke slot SAM pembaca, lalu jalankan ulang kpectl doctor.",
		"Insert the SAM into the reader's SAM slot, then run kpectl doctor again.")
	samBlockedAction = tf("SAM terblokir: hubungi penerbit SAM untuk penggantian. Jangan mencoba mengaktifkannya lagi.",
		"The SAM is blocked: contact the SAM issuer for a replacement. Do not try to activate it again.")
)

// samInfo is the SAM's state from the agent or from a probe.
type samInfo struct {
	reader, serial, state string
	tries                 int
	counter               uint32
}

func (r *run) checkSAM(ctx context.Context, ag *agentState, readers []apdu.ReaderInfo, pcscOK bool) {
	f := Finding{ID: CheckSAM}
	defer func() { r.add(f) }()
	var (
		info     *samInfo
		skipped  []string // readers the probe could not use
		probeErr error
	)
	switch {
	case ag.running && ag.health != nil:
		s := ag.health.SAM
		f.Detail = "as reported by the agent"
		if s != nil && s.Present {
			info = &samInfo{reader: s.Reader, serial: s.Serial, state: s.State, tries: s.TriesLeft, counter: s.Counter}
		}
	case ag.running:
		f.Status, f.Code, f.Detail = Skip, "agent-holds-sam", "the running agent holds the SAM and its token is not available"
		f.Message = tf("Tidak diperiksa: SAM dipegang agen yang sedang berjalan.", "Not checked: the running agent holds the SAM.")
		f.Action = tf("Jalankan kpectl doctor sebagai root (sudo) agar SAM diperiksa lewat agen.", "Run kpectl doctor as root (sudo) to check the SAM through the agent.")
		return
	case !pcscOK:
		f.Status, f.Code, f.Detail = Skip, "no-service", "the PC/SC service is not usable"
		f.Message = tf("Tidak diperiksa: layanan kartu pintar tidak tersedia.", "Not checked: the smart-card service is not available.")
		return
	default:
		info, skipped, probeErr = r.probeSAM(ctx, readers)
		f.Detail = "probed directly (the agent is not running)"
		if len(skipped) > 0 {
			f.Detail += "; not probed (held by another program): " + strings.Join(skipped, ", ")
		}
		if probeErr != nil {
			f.Detail += "; " + probeErr.Error()
		}
	}
	if info == nil && (len(skipped) > 0 || probeErr != nil) {
		// the SAM may be in a reader that could not be probed
		f.Status, f.Code = Fail, "not-probed"
		f.Message = tf("SAM tidak dapat diperiksa: pembaca dipakai program lain atau tidak menjawab.",
			"The SAM could not be checked: a reader is held by another program or did not answer.")
		f.Action = tf("Tutup program lain yang memakai pembaca kartu (mis. aplikasi sidik jari vendor), cabut-pasang pembaca bila perlu, lalu jalankan ulang kpectl doctor.",
			"Close any other program using the card reader (e.g. a vendor's fingerprint application), replug the reader if needed, then run kpectl doctor again.")
		return
	}
	if info == nil {
		f.Status, f.Code = Fail, "missing"
		f.Message = tf("SAM tidak ditemukan di pembaca mana pun.", "No SAM found in any reader.")
		if len(r.cfg.Readers.SAM) > 0 {
			f.Detail += "; readers.sam: " + strings.Join(r.cfg.Readers.SAM, ", ")
		}
		f.Action = samMissingAction
		return
	}
	f.Detail = fmt.Sprintf("SAM %s in %q: state %s, activation tries left %d, signature counter %d; %s",
		info.serial, info.reader, info.state, info.tries, info.counter, f.Detail)
	switch info.state {
	case "active":
		f.Status, f.Code = OK, "active"
		f.Message = tf("SAM aktif (penghitung tanda tangan %d).", "The SAM is active (signature counter %d).", info.counter)
	case "blocked":
		f.Status, f.Code = Fail, "blocked"
		f.Message = tf("SAM terblokir.", "The SAM is blocked.")
		f.Action = samBlockedAction
	case "inactive":
		f.Status, f.Code = Warn, "inactive"
		f.Message = tf("SAM belum diaktifkan untuk terminal ini (sisa percobaan aktivasi: %d).", "The SAM is not activated for this terminal (activation tries left: %d).", info.tries)
		code := r.cfg.SAM.ActivationCodeFile
		switch {
		case code == "":
			f.Action = tf("Isi sam.activation_code_file di konfigurasi agen dengan berkas kode aktivasi dari penerbit (mode 600); agen mengaktifkan SAM saat mulai. Lalu mulai ulang agen.",
				"Set sam.activation_code_file in the agent's configuration to the file holding the issuer's activation code (mode 600); the agent activates the SAM when it starts. Then restart the agent.")
		case !ag.running:
			f.Action = tf("Jalankan agen: agen mengaktifkan SAM saat mulai dengan kode di %s.", "Start the agent: it activates the SAM when it starts, with the code in %s.", code)
		default:
			f.Action = tf("Agen tidak dapat mengaktifkan SAM dengan kode di %s: periksa berkas itu dan log agen. Kode yang salah mengurangi sisa percobaan; jangan mencoba berulang-ulang.",
				"The agent could not activate the SAM with the code in %s: check that file and the agent's log. A wrong code costs a try; do not try again and again.", code)
		}
	default:
		f.Status, f.Code = Warn, "unknown-state"
		f.Message = tf("Status SAM tidak dikenal: %s.", "Unknown SAM state: %s.", info.state)
		f.Action = tf("Jalankan ulang kpectl doctor; bila berulang, hubungi penerbit SAM.", "Run kpectl doctor again; if it repeats, contact the SAM issuer.")
	}
}

// probeSAM looks for the SAM: in the readers named by readers.sam, else in
// every reader holding a card. It returns the readers it could not probe
// (held exclusively).
func (r *run) probeSAM(ctx context.Context, readers []apdu.ReaderInfo) (*samInfo, []string, error) {
	var skipped []string
	var lastErr error
	for _, x := range readers {
		if !r.samCandidate(x.Name) || !x.CardPresent || x.Mute {
			continue
		}
		if x.Exclusive {
			skipped = append(skipped, x.Name)
			continue
		}
		info, err := bounded(ctx, r.o.CheckTimeout, func(ctx context.Context) (*samInfo, error) { return probeReader(ctx, x.Name) })
		if errors.Is(err, apdu.ErrSharingViolation) {
			skipped = append(skipped, x.Name)
			continue
		}
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", x.Name, err)
			continue
		}
		if info != nil {
			return info, skipped, nil
		}
	}
	return nil, skipped, lastErr
}

func (r *run) samCandidate(name string) bool {
	if match(r.cfg.Readers.Ignore, name) {
		return false
	}
	if len(r.cfg.Readers.SAM) > 0 {
		return match(r.cfg.Readers.SAM, name)
	}
	return true
}

func match(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// probeReader selects the SAM application on the card in reader inside a
// transaction and, when the card has it, reads its state (nothing else:
// no activation). Nothing else is sent: a citizen's card left in a reader
// sees one SELECT it refuses.
func probeReader(ctx context.Context, reader string) (*samInfo, error) {
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	card, err := tr.Connect(ctx, reader)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	if err := card.BeginTransaction(ctx); err != nil {
		return nil, err
	}
	defer card.EndTransaction()
	s, err := sam.Open(ctx, card)
	if se := (*apdu.StatusError)(nil); errors.As(err, &se) {
		return nil, nil // not a SAM
	}
	if err != nil {
		return nil, err
	}
	in, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	state := map[sam.State]string{sam.Active: "active", sam.Inactive: "inactive", sam.Blocked: "blocked"}[in.State]
	return &samInfo{reader: reader, serial: fmt.Sprintf("%X", in.Serial[:]), state: state, tries: in.TriesLeft, counter: in.Counter}, nil
}
