package main

import (
	"errors"
	"fmt"

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
			sam.ErrNotActivated:       "SAM belum diaktifkan untuk terminal ini. Berikan kode aktivasi (-sam-code-file) atau rahasia KTP-el (-ktp-secrets-file).",
			outbox.ErrLocked:          "Agen sedang berjalan (outbox sedang dipakai); hentikan agen dulu atau gunakan API lokal.",
			outbox.ErrNoOutbox:        "Berkas outbox tidak ada. Periksa -outbox atau KPE_OUTBOX.",
			outbox.ErrDamaged:         "Berkas outbox rusak. Pulihkan catatannya dengan kpectl queue salvage BERKAS -out BARU.db; saat mulai, agen memindahkan berkas rusak dan membuat outbox baru.",
			outbox.ErrCorrupt:         "Ada catatan di outbox yang tidak terbaca. Pulihkan catatannya dengan kpectl queue salvage BERKAS -out BARU.db.",
			outbox.ErrNotDead:         "Nomor itu tidak ada di antrean catatan ditolak (dead). Lihat kpectl queue list -state dead.",
			errOutExists:              "Berkas -out sudah ada. Pilih nama berkas baru; kpectl tidak menimpa berkas.",
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
		FingerPlaceAgain: "letakkan jari kembali", FingerLastTry: "tinggal satu percobaan di kartu: minta konfirmasi petugas (-confirm-last-try)",
		FingerBlocked: "verifikasi sidik jari pada kartu terblokir: pemegang kartu harus ke kantor penerbit",
		FingerError:   "pemindai sidik jari bermasalah",
		Queue: queueMessages{
			Outbox: "Outbox", Pending: "menunggu dikirim (pending)", Sending: "sedang dikirim (sending)",
			Acknowledged: "diterima kantor pusat (acknowledged)", Dead: "ditolak (dead)",
			Oldest: "umur tertua belum terkirim", Use: "pemakaian", UseLine: "jumlah %.1f %%, umur %.1f %% (batas %d catatan, %s)",
			Alarm: "alarm", AlarmNone: "tidak ada",
			AlarmWarning: "PERINGATAN: outbox terisi %d %%. Catatan menumpuk karena belum diterima kantor pusat; periksa koneksi jaringan ke kantor pusat.",
			AlarmFull:    "PENUH: catatan baru DITOLAK (petugas melihat \"tidak tercatat\") sampai kantor pusat menerima antrean. Segera periksa koneksi ke kantor pusat.",
			MovedAside:   "berkas rusak dipindahkan", SalvageHint: "pulihkan catatannya: kpectl queue salvage %s -out BARU.db",
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
			sam.ErrNotActivated:       "The SAM is not activated for this terminal. Give the activation code (-sam-code-file) or the KTP-el secrets (-ktp-secrets-file).",
			outbox.ErrLocked:          "The agent is running (it has the outbox open); stop it first or use the local API.",
			outbox.ErrNoOutbox:        "The outbox file does not exist. Check -outbox or KPE_OUTBOX.",
			outbox.ErrDamaged:         "The outbox file is damaged. Recover its records with kpectl queue salvage FILE -out NEW.db; when it starts, the agent moves a damaged file aside and starts a new outbox.",
			outbox.ErrCorrupt:         "A record in the outbox cannot be read. Recover the records with kpectl queue salvage FILE -out NEW.db.",
			outbox.ErrNotDead:         "That number is not in the dead-letter queue (dead). See kpectl queue list -state dead.",
			errOutExists:              "The -out file exists. Choose a new file name; kpectl does not overwrite files.",
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
		FingerPlaceAgain: "place your finger again", FingerLastTry: "only one try left on the card: the clerk must confirm (-confirm-last-try)",
		FingerBlocked: "the card's fingerprint verification is blocked: the holder must go to the issuing office",
		FingerError:   "fingerprint sensor problem",
		Queue: queueMessages{
			Outbox: "Outbox", Pending: "pending", Sending: "sending", Acknowledged: "acknowledged", Dead: "dead (rejected)",
			Oldest: "oldest unsynced", Use: "use", UseLine: "count %.1f %%, age %.1f %% (limits %d records, %s)",
			Alarm: "alarm", AlarmNone: "none",
			AlarmWarning: "WARNING: the outbox is %d %% full. Records are piling up because the back office has not taken them; check the network connection to the back office.",
			AlarmFull:    "FULL: new records are REFUSED (clerks see \"not recorded\") until the back office takes the backlog. Check the connection to the back office now.",
			MovedAside:   "damaged file moved aside", SalvageHint: "recover its records: kpectl queue salvage %s -out NEW.db",
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
	},
}

func messagesFor(lang string) (messages, error) {
	m, ok := catalogue[lang]
	if !ok {
		return messages{}, fmt.Errorf("unsupported -lang %q: use id (Bahasa Indonesia) or en", lang)
	}
	return m, nil
}

// explain turns an error into the operator's sentence plus the technical
// detail on a second line.
func (c *cli) explain(err error) string {
	for kind, text := range c.msg.Errs {
		if errors.Is(err, kind) {
			return text + "\n  (" + err.Error() + ")"
		}
	}
	return err.Error()
}
