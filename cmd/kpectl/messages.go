package main

import (
	"errors"
	"fmt"
	"net/http"

	"kpe-agent/agent/api"
	"kpe-agent/agent/doctor"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/sync/outbox"
)

// messages holds every operator-facing sentence, in one language.
type messages struct {
	UnknownCommand string
	NoReaders      string
	CardPresent    string
	NoCard         string
	InUseExclusive string
	Mute           string
	Events         map[apdu.EventKind]string
	Watching       string
	// Explanations of transport failures, with the action to take.
	Errs map[error]string
	// kpectl read.
	Verdicts                       map[string]string
	CheckCard, CheckData, CheckIDs string
	OK, Failed, Holder, PhotoSaved string
	NoSAM, PhotoKTPel              string
	// Fingerprint.
	Finger, PlaceFinger, FingerMatch, FingerNoMatch, FingerNoMatchTries string
	FingerPlaceAgain, FingerLastTry, FingerBlocked, FingerError         string
	// kpectl queue.
	Queue queueMessages
	// kpectl status, auth, sync, monitor --via-agent: the agent's local API.
	Agent agentMessages
	// kpectl doctor.
	Doctor doctorMessages
}

// agentMessages are the sentences of the commands that go through the
// agent's local API.
type agentMessages struct {
	NoToken                     string // token file, cause
	TokenRejected               string // token file
	APIError                    string // code, HTTP status
	Agent, Version, Terminal    string
	Started, PCSC, SAM, Readers string
	Outbox, Sync, Problems      string
	SAMMissing                  string
	SAMLine                     string // state, serial, counter, reader
	Roles                       map[string]string
	Busy, NoReaders             string
	QueueLine                   string // pending, sending, dead, used %, oldest
	SyncOff, Never              string
	LastSuccess, LastAttempt    string
	NextAttempt, LastError      string
	Failures, ClockSkewed       string
	SyncTotals                  string // accepted, duplicates, rejected
	States                      map[string]string
	Waiting                     string // seconds
	Recorded, RecordLine        string // RecordLine: counter, reader, card kind
	Cancelled, CancelFailed     string
	LastTryHint                 string
	Failed                      string // code
	TriesLeft                   string // tries
	SendingNow                  string
	SyncResult                  string // sent, accepted, duplicates, rejected, remaining
	SyncFailed                  string
	WatchingAgent, Reconnecting string
	FromAgent                   string // outbox file
	Events                      map[string]string
}

// doctorMessages are kpectl doctor's sentences.
type doctorMessages struct {
	Title    string // when, how long
	Marks    map[doctor.Status]string
	Action   string
	Checking string // done, total
	Summary  string // ok, warnings, failures, skipped
}

// queueMessages are kpectl queue's sentences, for a technician.
type queueMessages struct {
	Outbox, Pending, Sending, Acknowledged, Dead, Oldest, Use string
	UseLine                                                   string // count %, age %, max records, max age
	Alarm, AlarmNone, AlarmFull                               string
	AlarmWarning                                              string // percent
	MovedAside, SalvageHint                                   string // SalvageHint: the file
	UnderAMinute, Days, Hours, Minutes                        string
	NoRecords, Unreadable                                     string
	ListHeader                                                []string
	More                                                      string // how many are shown
	Requeued                                                  string // how many
	Recovered                                                 string // how many, from which file
	SAMLine                                                   string // records, first and last counter
	NoneMissing                                               string
	Missing                                                   string // how many, which
	Repeated                                                  string // which
	Written                                                   string // how many, to which file
}

var catalogue = map[string]messages{
	"id": {
		UnknownCommand: "perintah tidak dikenal",
		NoReaders:      "Tidak ada pembaca kartu. Periksa kabel USB pembaca dan layanan pcscd.",
		CardPresent:    "kartu ada",
		NoCard:         "tidak ada kartu",
		InUseExclusive: "dipakai eksklusif oleh program lain",
		Mute:           "kartu tidak menjawab",
		Watching:       "Memantau pembaca kartu (Ctrl-C untuk berhenti)…",
		Events: map[apdu.EventKind]string{
			apdu.ReaderAdded:     "pembaca terpasang",
			apdu.ReaderRemoved:   "pembaca dilepas",
			apdu.CardInserted:    "kartu dimasukkan",
			apdu.CardRemoved:     "kartu dicabut",
			apdu.ReaderBusy:      "pembaca dipakai program lain",
			apdu.ServiceLost:     "layanan kartu pintar (pcscd) berhenti; mencoba lagi",
			apdu.ServiceRestored: "layanan kartu pintar tersedia lagi",
		},
		Errs: map[error]string{
			apdu.ErrCardRemoved:       "Kartu dicabut saat dibaca. Masukkan kembali kartu lalu ulangi.",
			apdu.ErrCardReset:         "Kartu di-reset oleh program lain. Ulangi operasi.",
			apdu.ErrTimeout:           "Kartu tidak menjawab tepat waktu. Cabut dan masukkan kembali kartu.",
			apdu.ErrNoService:         "Layanan kartu pintar (pcscd / Smart Card) tidak berjalan. Jalankan layanan lalu ulangi.",
			apdu.ErrSharingViolation:  "Pembaca sedang dipakai program lain. Tutup program itu lalu ulangi.",
			apdu.ErrNoCard:            "Tidak ada kartu di pembaca. Masukkan kartu.",
			apdu.ErrNoReader:          "Pembaca kartu tidak ditemukan. Periksa kabel USB dan nama pembaca.",
			apdu.ErrMalformedResponse: "Jawaban kartu rusak. Cabut dan masukkan kembali kartu; jika berulang, kartu mungkin rusak.",
			sam.ErrBlocked:            "SAM terblokir (kode aktivasi salah terlalu sering). Hubungi kantor pusat untuk SAM pengganti.",
			sam.ErrNotActivated:       "SAM belum diaktifkan untuk terminal ini. Berikan kode aktivasi (--sam-code-file) atau rahasia KTP-el (--ktp-secrets-file).",
			outbox.ErrLocked:          "Agen sedang berjalan (outbox sedang dipakai); hentikan agen dulu atau gunakan API lokal.",
			outbox.ErrNoOutbox:        "Berkas outbox tidak ada. Periksa --outbox atau KPE_OUTBOX.",
			outbox.ErrDamaged:         "Berkas outbox rusak. Pulihkan catatannya dengan kpectl queue salvage BERKAS --out BARU.db; saat mulai, agen memindahkan berkas rusak dan membuat outbox baru.",
			outbox.ErrCorrupt:         "Ada catatan di outbox yang tidak terbaca. Pulihkan catatannya dengan kpectl queue salvage BERKAS --out BARU.db.",
			outbox.ErrNotDead:         "Nomor itu tidak ada di antrean catatan ditolak (dead). Lihat kpectl queue list --state dead.",
			errOutExists:              "Berkas --out sudah ada. Pilih nama berkas baru; kpectl tidak menimpa berkas.",
			api.ErrNotRunning:         "Agen tidak berjalan. Jalankan: sudo systemctl start kpe-agent (Windows, sebagai Administrator: sc start kpe-agent); periksa dengan kpectl doctor.",
		},
		Verdicts: map[string]string{
			"genuine": "ASLI: kartu dan data terverifikasi", "not-genuine": "TIDAK ASLI: kartu gagal autentikasi (kemungkinan kloning)",
			"issuer-expired": "DATA TIDAK TERVERIFIKASI: sertifikat penerbit kedaluwarsa", "issuer-untrusted": "DATA TIDAK TERVERIFIKASI: penerbit tidak dipercaya",
			"bad-signature": "DATA TIDAK TERVERIFIKASI: tanda tangan penerbit salah", "sod-unreadable": "DATA TIDAK TERVERIFIKASI: objek keamanan rusak",
			"identifiers-inconsistent": "PERHATIAN: nomor identitas tidak cocok dengan data kartu", "unknown-card": "Kartu tidak dikenal",
			"sam-ready": "SAM siap", "sam-blocked": "SAM terblokir", "sam-not-activated": "SAM belum diaktifkan",
			"tampered": "DATA DIUBAH: kelompok data tidak cocok dengan tanda tangan penerbit",
		},
		CheckCard: "kartu asli (SAM)", CheckData: "data asli (tanda tangan penerbit)", CheckIDs: "nomor identitas konsisten",
		OK: "ya", Failed: "TIDAK", Holder: "pemegang", PhotoSaved: "foto disimpan ke",
		NoSAM:      "Tidak ada SAM di pembaca mana pun. Pasang SAM di pembaca kedua.",
		PhotoKTPel: "Foto KTP-el tidak boleh disimpan ke disk (data kependudukan).",
		Finger:     "sidik jari", PlaceFinger: "Letakkan jari pada pemindai…",
		FingerMatch: "COCOK", FingerNoMatch: "TIDAK COCOK", FingerNoMatchTries: "TIDAK COCOK (sisa percobaan pada kartu: %d)",
		FingerPlaceAgain: "letakkan jari kembali", FingerLastTry: "tinggal satu percobaan di kartu: minta konfirmasi petugas (--confirm-last-try)",
		FingerBlocked: "verifikasi sidik jari pada kartu terblokir: pemegang kartu harus ke kantor penerbit",
		FingerError:   "pemindai sidik jari bermasalah",
		Queue: queueMessages{
			Outbox: "Outbox", Pending: "menunggu dikirim (pending)", Sending: "sedang dikirim (sending)",
			Acknowledged: "diterima kantor pusat (acknowledged)", Dead: "ditolak (dead)",
			Oldest: "umur tertua belum terkirim", Use: "pemakaian", UseLine: "jumlah %.1f %%, umur %.1f %% (batas %d catatan, %s)",
			Alarm: "alarm", AlarmNone: "tidak ada",
			AlarmWarning: "PERINGATAN: outbox terisi %d %%. Catatan menumpuk karena belum diterima kantor pusat; periksa koneksi jaringan ke kantor pusat.",
			AlarmFull:    "PENUH: catatan baru DITOLAK (petugas melihat \"tidak tercatat\") sampai kantor pusat menerima antrean. Segera periksa koneksi ke kantor pusat.",
			MovedAside:   "berkas rusak dipindahkan", SalvageHint: "pulihkan catatannya: kpectl queue salvage %s --out BARU.db",
			UnderAMinute: "< 1 menit", Days: "hari", Hours: "jam", Minutes: "menit",
			NoRecords: "Tidak ada catatan.", Unreadable: "tidak terbaca",
			ListHeader: []string{"NO", "STATUS", "MASUK", "PERCOBAAN", "SAM", "PENGHITUNG", "LAYANAN", "TERMINAL", "WAKTU", "KODE", "ALASAN"},
			More:       "… masih ada catatan lain; %d yang pertama ditampilkan (-n 0 untuk semua).",
			Requeued:   "%d catatan dikembalikan ke antrean (pending); agen akan mengirimnya lagi.",
			Recovered:  "%d catatan dipulihkan dari %s", SAMLine: "%d catatan, penghitung %d–%d",
			NoneMissing: "tidak ada yang hilang", Missing: "%d hilang: %s",
			Repeated: "penghitung yang dipakai dua kali (catatan berbeda): %s",
			Written:  "%d catatan ditulis ke %s sebagai pending (menunggu dikirim).",
		},
		Agent: agentMessages{
			NoToken:       "Token API agen tidak terbaca (%s): jalankan dengan sudo, atau beri --token-file BERKAS.\n  (%v)",
			TokenRejected: "Agen menolak token API (%s). Pakai token agen ini (--token-file); token berubah saat agen dipasang ulang.",
			APIError:      "[%s, HTTP %d]",
			Agent:         "Agen", Version: "versi", Terminal: "terminal", Started: "mulai",
			PCSC: "Layanan kartu pintar", SAM: "SAM", Readers: "Pembaca", Outbox: "Outbox", Sync: "Sinkronisasi", Problems: "Masalah",
			SAMMissing: "tidak ada SAM",
			SAMLine:    "%s, serial %s, penghitung %d, pembaca %q",
			Roles:      map[string]string{"card": "kartu", "sam": "SAM", "ignored": "diabaikan"},
			Busy:       "sedang melayani", NoReaders: "tidak ada pembaca",
			QueueLine: "menunggu %d, sedang dikirim %d, ditolak (dead) %d, terpakai %.1f %%, tertua %s",
			SyncOff:   "tidak dikonfigurasi", Never: "belum pernah",
			LastSuccess: "terakhir berhasil", LastAttempt: "percobaan terakhir", NextAttempt: "percobaan berikutnya",
			LastError: "kesalahan terakhir", Failures: "gagal berturut-turut", ClockSkewed: "PERINGATAN: jam terminal berbeda dari kantor pusat",
			SyncTotals: "diterima %d, duplikat %d, ditolak %d",
			States: map[string]string{
				api.StateIdle: "Menunggu kartu", api.StateDetected: "Kartu terdeteksi", api.StateIdentified: "Kartu dikenali",
				api.StateAuthenticated: "Kartu dan data asli", api.StateFingerprint: "Letakkan jari pada sensor",
				api.StateVerified: "Sidik jari cocok", api.StateRecorded: "Tercatat", api.StateRemoved: "Kartu dicabut", api.StateFailed: "Gagal",
			},
			Waiting:  "Menunggu kartu (paling lama %d detik)… Ctrl-C untuk membatalkan.",
			Recorded: "TERCATAT. Kode autentikasi:", RecordLine: "penghitung SAM %d, pembaca %q, kartu %s",
			Cancelled: "Transaksi dibatalkan.", CancelFailed: "Pembatalan tidak terkirim ke agen: %v",
			LastTryHint: "Tinggal satu percobaan sidik jari: ulangi dengan --confirm-last-try setelah petugas mengonfirmasi.",
			Failed:      "GAGAL (%s)", TriesLeft: "sisa percobaan sidik jari pada kartu: %d",
			SendingNow:    "Mengirim antrean ke kantor pusat…",
			SyncResult:    "Terkirim %d: diterima %d, duplikat %d, ditolak %d. Sisa belum terkirim: %d.",
			SyncFailed:    "Sinkronisasi gagal:",
			WatchingAgent: "Memantau kejadian agen %s (Ctrl-C untuk berhenti)…", Reconnecting: "Koneksi ke agen terputus (%v); mencoba lagi…",
			FromAgent: "Outbox %s dipakai agen yang sedang berjalan; angka berikut dari API agen (/v1/queue).",
			Events:    map[string]string{api.EventReader: "pembaca", api.EventSession: "sesi", api.EventSAM: "SAM", api.EventSync: "sinkronisasi", api.EventService: "layanan"},
		},
		Doctor: doctorMessages{
			Title:    "kpectl doctor — pemeriksaan terminal (%s, %s)",
			Marks:    map[doctor.Status]string{doctor.OK: "OK", doctor.Warn: "PERINGATAN", doctor.Fail: "GAGAL", doctor.Skip: "DILEWATI"},
			Action:   "Tindakan",
			Checking: "Memeriksa… (%d/%d)",
			Summary:  "Ringkasan: %d OK, %d peringatan, %d gagal, %d dilewati.",
		},
	},
	"en": {
		UnknownCommand: "unknown command",
		NoReaders:      "No card readers. Check the reader's USB cable and the pcscd service.",
		CardPresent:    "card present",
		NoCard:         "no card",
		InUseExclusive: "held exclusively by another program",
		Mute:           "card does not answer",
		Watching:       "Watching card readers (Ctrl-C to stop)…",
		Events: map[apdu.EventKind]string{
			apdu.ReaderAdded:     "reader connected",
			apdu.ReaderRemoved:   "reader disconnected",
			apdu.CardInserted:    "card inserted",
			apdu.CardRemoved:     "card removed",
			apdu.ReaderBusy:      "reader in use by another program",
			apdu.ServiceLost:     "smart-card service (pcscd) stopped; retrying",
			apdu.ServiceRestored: "smart-card service is back",
		},
		Errs: map[error]string{
			apdu.ErrCardRemoved:       "The card was removed while being read. Insert it again and retry.",
			apdu.ErrCardReset:         "Another program reset the card. Retry the operation.",
			apdu.ErrTimeout:           "The card did not answer in time. Remove and re-insert the card.",
			apdu.ErrNoService:         "The smart-card service (pcscd / Smart Card) is not running. Start it and retry.",
			apdu.ErrSharingViolation:  "Another program is using the reader. Close that program and retry.",
			apdu.ErrNoCard:            "No card in the reader. Insert a card.",
			apdu.ErrNoReader:          "Card reader not found. Check the USB cable and the reader name.",
			apdu.ErrMalformedResponse: "The card's answer was malformed. Re-insert the card; if it repeats, the card may be damaged.",
			sam.ErrBlocked:            "The SAM is blocked (too many wrong activation codes). Ask the back office for a replacement SAM.",
			sam.ErrNotActivated:       "The SAM is not activated for this terminal. Give the activation code (--sam-code-file) or the KTP-el secrets (--ktp-secrets-file).",
			outbox.ErrLocked:          "The agent is running (it has the outbox open); stop it first or use the local API.",
			outbox.ErrNoOutbox:        "The outbox file does not exist. Check --outbox or KPE_OUTBOX.",
			outbox.ErrDamaged:         "The outbox file is damaged. Recover its records with kpectl queue salvage FILE --out NEW.db; when it starts, the agent moves a damaged file aside and starts a new outbox.",
			outbox.ErrCorrupt:         "A record in the outbox cannot be read. Recover the records with kpectl queue salvage FILE --out NEW.db.",
			outbox.ErrNotDead:         "That number is not in the dead-letter queue (dead). See kpectl queue list --state dead.",
			errOutExists:              "The --out file exists. Choose a new file name; kpectl does not overwrite files.",
			api.ErrNotRunning:         "The agent is not running. Start it: sudo systemctl start kpe-agent (Windows, as Administrator: sc start kpe-agent); check with kpectl doctor.",
		},
		Verdicts: map[string]string{
			"genuine": "GENUINE: card and data verified", "not-genuine": "NOT GENUINE: the card failed authentication (possible clone)",
			"issuer-expired": "DATA NOT VERIFIED: the issuer certificate has expired", "issuer-untrusted": "DATA NOT VERIFIED: the issuer is not trusted",
			"bad-signature": "DATA NOT VERIFIED: the issuer signature is wrong", "sod-unreadable": "DATA NOT VERIFIED: the security object is damaged",
			"identifiers-inconsistent": "ATTENTION: identity numbers do not match the card's data", "unknown-card": "Unknown card",
			"sam-ready": "SAM ready", "sam-blocked": "SAM blocked", "sam-not-activated": "SAM not activated",
			"tampered": "DATA ALTERED: a data group does not match the issuer's signature",
		},
		CheckCard: "card genuine (SAM)", CheckData: "data genuine (issuer signature)", CheckIDs: "identity numbers consistent",
		OK: "yes", Failed: "NO", Holder: "holder", PhotoSaved: "photo saved to",
		NoSAM:      "No SAM in any reader. Put the SAM in the second reader.",
		PhotoKTPel: "A KTP-el photo must not be saved to disk (population data).",
		Finger:     "fingerprint", PlaceFinger: "Place the finger on the sensor…",
		FingerMatch: "MATCH", FingerNoMatch: "NO MATCH", FingerNoMatchTries: "NO MATCH (tries left on the card: %d)",
		FingerPlaceAgain: "place your finger again", FingerLastTry: "only one try left on the card: the clerk must confirm (--confirm-last-try)",
		FingerBlocked: "the card's fingerprint verification is blocked: the holder must go to the issuing office",
		FingerError:   "fingerprint sensor problem",
		Queue: queueMessages{
			Outbox: "Outbox", Pending: "pending", Sending: "sending", Acknowledged: "acknowledged", Dead: "dead (rejected)",
			Oldest: "oldest unsynced", Use: "use", UseLine: "count %.1f %%, age %.1f %% (limits %d records, %s)",
			Alarm: "alarm", AlarmNone: "none",
			AlarmWarning: "WARNING: the outbox is %d %% full. Records are piling up because the back office has not taken them; check the network connection to the back office.",
			AlarmFull:    "FULL: new records are REFUSED (clerks see \"not recorded\") until the back office takes the backlog. Check the connection to the back office now.",
			MovedAside:   "damaged file moved aside", SalvageHint: "recover its records: kpectl queue salvage %s --out NEW.db",
			UnderAMinute: "< 1 min", Days: "d", Hours: "h", Minutes: "min",
			NoRecords: "No records.", Unreadable: "unreadable",
			ListHeader: []string{"SEQ", "STATE", "ENQUEUED", "TRIES", "SAM", "COUNTER", "SERVICE", "TERMINAL", "TIME", "CODE", "REASON"},
			More:       "… more records; the first %d are shown (-n 0 for all).",
			Requeued:   "%d record(s) moved back to the queue (pending); the agent will send them again.",
			Recovered:  "%d records recovered from %s", SAMLine: "%d records, counters %d–%d",
			NoneMissing: "none missing", Missing: "%d missing: %s",
			Repeated: "counters used twice (different records): %s",
			Written:  "%d records written to %s as pending (waiting to be sent).",
		},
		Agent: agentMessages{
			NoToken:       "The agent's API token cannot be read (%s): run with sudo, or give --token-file FILE.\n  (%v)",
			TokenRejected: "The agent refuses the API token (%s). Use this agent's token (--token-file); it changes when the agent is reinstalled.",
			APIError:      "[%s, HTTP %d]",
			Agent:         "Agent", Version: "version", Terminal: "terminal", Started: "started",
			PCSC: "Smart-card service", SAM: "SAM", Readers: "Readers", Outbox: "Outbox", Sync: "Sync", Problems: "Problems",
			SAMMissing: "no SAM",
			SAMLine:    "%s, serial %s, counter %d, reader %q",
			Roles:      map[string]string{"card": "card", "sam": "SAM", "ignored": "ignored"},
			Busy:       "busy", NoReaders: "no readers",
			QueueLine: "pending %d, sending %d, dead %d, used %.1f %%, oldest %s",
			SyncOff:   "not configured", Never: "never",
			LastSuccess: "last success", LastAttempt: "last attempt", NextAttempt: "next attempt",
			LastError: "last error", Failures: "failures in a row", ClockSkewed: "WARNING: the terminal's clock differs from the back office's",
			SyncTotals: "accepted %d, duplicates %d, rejected %d",
			States: map[string]string{
				api.StateIdle: "Waiting for a card", api.StateDetected: "Card detected", api.StateIdentified: "Card identified",
				api.StateAuthenticated: "Card and data authenticated", api.StateFingerprint: "Place the finger on the sensor",
				api.StateVerified: "Fingerprint verified", api.StateRecorded: "Recorded", api.StateRemoved: "Card removed", api.StateFailed: "Failed",
			},
			Waiting:  "Waiting for a card (at most %d seconds)… Ctrl-C to cancel.",
			Recorded: "RECORDED. Authentication code:", RecordLine: "SAM counter %d, reader %q, card %s",
			Cancelled: "The transaction was cancelled.", CancelFailed: "The cancel did not reach the agent: %v",
			LastTryHint: "One fingerprint try left: run again with --confirm-last-try once the clerk has confirmed.",
			Failed:      "FAILED (%s)", TriesLeft: "fingerprint tries left on the card: %d",
			SendingNow:    "Sending the queue to the back office…",
			SyncResult:    "Sent %d: accepted %d, duplicates %d, rejected %d. Still unsent: %d.",
			SyncFailed:    "Sync failed:",
			WatchingAgent: "Watching the agent's events at %s (Ctrl-C to stop)…", Reconnecting: "Connection to the agent lost (%v); retrying…",
			FromAgent: "The outbox %s is held by the running agent; these figures come from the agent's API (/v1/queue).",
			Events:    map[string]string{api.EventReader: "reader", api.EventSession: "session", api.EventSAM: "SAM", api.EventSync: "sync", api.EventService: "service"},
		},
		Doctor: doctorMessages{
			Title:    "kpectl doctor — terminal diagnosis (%s, %s)",
			Marks:    map[doctor.Status]string{doctor.OK: "OK", doctor.Warn: "WARNING", doctor.Fail: "FAIL", doctor.Skip: "SKIPPED"},
			Action:   "Action",
			Checking: "Checking… (%d/%d)",
			Summary:  "Summary: %d OK, %d warnings, %d failed, %d skipped.",
		},
	},
}

func messagesFor(lang string) (messages, error) {
	m, ok := catalogue[lang]
	if !ok {
		return messages{}, fmt.Errorf("unsupported --lang %q: use id (Bahasa Indonesia) or en", lang)
	}
	return m, nil
}

// explain turns an error into the operator's sentence plus the technical
// detail on a second line.
func (c *cli) explain(err error) string {
	var ae *api.APIError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			if c.tokenErr != nil {
				return fmt.Sprintf(c.msg.Agent.NoToken, c.tokenPath, c.tokenErr) + "\n  (" + err.Error() + ")"
			}
			return fmt.Sprintf(c.msg.Agent.TokenRejected, c.tokenPath) + "\n  (" + err.Error() + ")"
		}
		msg := ae.Err.Message
		if msg == "" {
			msg = err.Error()
		}
		return msg + " " + fmt.Sprintf(c.msg.Agent.APIError, ae.Err.Code, ae.Status)
	}
	for kind, text := range c.msg.Errs {
		if errors.Is(err, kind) {
			return text + "\n  (" + err.Error() + ")"
		}
	}
	return err.Error()
}
