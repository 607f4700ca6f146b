package main

import (
	"errors"
	"fmt"

	"kpe-agent/apdu"
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
