package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/sync/outbox"
)

// Symbolic error codes of the local API (docs/local-api.md lists them with
// what a frontline application should do).
const (
	CodeNoCard          = "no-card"
	CodeCardRemoved     = "card-removed"
	CodeUnknownCard     = "unknown-card"
	CodeNoReader        = "no-reader"
	CodeReaderBusy      = "reader-busy"
	CodeReaderInUse     = "reader-in-use"
	CodePCSCUnavailable = "pcsc-unavailable"
	CodeNoSAM           = "no-sam"
	CodeSAMBlocked      = "sam-blocked"
	CodeSAMNotActivated = "sam-not-activated"
	CodeSAMCounter      = "sam-counter-behind"
	CodeCardNotGenuine  = "card-not-genuine"
	CodeDataNotGenuine  = "data-not-authentic"
	CodeFingerNoMatch   = "finger-no-match"
	CodeFingerAgain     = "finger-place-again"
	CodeFingerLastTry   = "finger-last-try"
	CodeFingerBlocked   = "finger-blocked"
	CodeNoSensor        = "no-sensor"
	CodeSensor          = "sensor-error"
	CodeKTPelNotSetUp   = "ktpel-not-configured"
	CodeCancelled       = "cancelled"
	CodeTimeout         = "timeout"
	CodeNotRecorded     = "not-recorded"
	CodeOutboxFull      = "outbox-full"
	CodeBadRequest      = "bad-request"
	CodeUnknownService  = "unknown-service"
	CodeNotAvailable    = "not-available"
	CodeShuttingDown    = "shutting-down"
	CodeSyncDisabled    = "sync-disabled"
	CodeSyncFailed      = "sync-failed"
	CodeCardError       = "card-error"
	CodeInternal        = "internal"
)

type message struct {
	id, en    string
	status    int
	retriable bool
}

// messages are the clerk-facing texts (Bahasa Indonesia first), the HTTP
// status and whether trying again can help.
var messages = map[string]message{
	CodeNoCard:          {"Tidak ada kartu di pembaca. Masukkan kartu.", "No card in the reader. Insert the card.", http.StatusConflict, true},
	CodeCardRemoved:     {"Kartu dicabut sebelum selesai. Masukkan kembali kartu dan ulangi.", "The card was removed before the end. Insert it again and retry.", http.StatusConflict, true},
	CodeUnknownCard:     {"Kartu tidak dikenal. Gunakan KPE, KPE Tambahan, atau KTP-el.", "Unknown card. Use a KPE, KPE Tambahan or KTP-el.", http.StatusUnprocessableEntity, false},
	CodeNoReader:        {"Pembaca kartu tidak ditemukan. Periksa kabel USB pembaca.", "Card reader not found. Check the reader's USB cable.", http.StatusNotFound, true},
	CodeReaderBusy:      {"Pembaca sedang melayani transaksi lain. Tunggu hingga selesai.", "The reader is serving another transaction. Wait until it ends.", http.StatusConflict, true},
	CodeReaderInUse:     {"Pembaca kartu sedang dipakai aplikasi lain. Tutup aplikasi tersebut lalu ulangi.", "The card reader is held by another program. Close that program and retry.", http.StatusConflict, true},
	CodePCSCUnavailable: {"Layanan kartu pintar tidak berjalan. Hubungi teknisi (kpectl doctor).", "The smart-card service is not running. Call a technician (kpectl doctor).", http.StatusServiceUnavailable, true},
	CodeNoSAM:           {"SAM tidak ditemukan. Pasang SAM pada slot SAM, lalu ulangi.", "No SAM found. Insert the SAM into the SAM slot, then retry.", http.StatusServiceUnavailable, true},
	CodeSAMBlocked:      {"SAM terblokir. Hubungi penerbit SAM; jangan mencoba lagi.", "The SAM is blocked. Contact the SAM issuer; do not retry.", http.StatusServiceUnavailable, false},
	CodeSAMNotActivated: {"SAM belum diaktifkan. Hubungi teknisi untuk aktivasi.", "The SAM is not activated. Call a technician to activate it.", http.StatusServiceUnavailable, false},
	CodeSAMCounter:      {"Penghitung SAM mundur dibanding catatan terakhir. Hubungi teknisi.", "The SAM's counter is behind the last record. Call a technician.", http.StatusServiceUnavailable, false},
	CodeCardNotGenuine:  {"Kartu tidak dapat dipastikan asli. Jangan layani dengan kartu ini.", "The card could not be proven genuine. Do not serve with this card.", http.StatusUnprocessableEntity, false},
	CodeDataNotGenuine:  {"Data kartu tidak sah (tanda tangan penerbit gagal). Arahkan pemegang ke kantor penerbit.", "The card's data is not authentic (issuer signature failed). Send the holder to the issuing office.", http.StatusUnprocessableEntity, false},
	CodeFingerNoMatch:   {"Sidik jari tidak cocok. Bersihkan jari dan sensor, lalu ulangi.", "The fingerprint does not match. Clean the finger and the sensor, then retry.", http.StatusUnprocessableEntity, true},
	CodeFingerAgain:     {"Sidik jari tidak terbaca. Letakkan jari kembali dengan rata.", "The fingerprint could not be read. Place the finger again, flat.", http.StatusUnprocessableEntity, true},
	CodeFingerLastTry:   {"Tinggal satu kesempatan sidik jari. Petugas harus mengonfirmasi sebelum mencoba.", "One fingerprint try left. The clerk must confirm before it is used.", http.StatusConflict, true},
	CodeFingerBlocked:   {"Verifikasi sidik jari pada kartu terblokir. Pemegang harus ke kantor penerbit.", "The card's fingerprint verification is blocked. The holder must go to the issuing office.", http.StatusUnprocessableEntity, false},
	CodeNoSensor:        {"Sensor sidik jari tidak dikonfigurasi. Hubungi teknisi.", "No fingerprint sensor is configured. Call a technician.", http.StatusServiceUnavailable, false},
	CodeSensor:          {"Sensor sidik jari bermasalah. Periksa kabel sensor lalu ulangi.", "The fingerprint sensor failed. Check its cable, then retry.", http.StatusServiceUnavailable, true},
	CodeKTPelNotSetUp:   {"Terminal ini belum disiapkan untuk autentikasi KTP-el. Hubungi teknisi.", "This terminal is not set up for KTP-el authentication. Call a technician.", http.StatusUnprocessableEntity, false},
	CodeCancelled:       {"Transaksi dibatalkan.", "The transaction was cancelled.", 499, true},
	CodeTimeout:         {"Waktu habis. Ulangi transaksi.", "Timed out. Start the transaction again.", http.StatusGatewayTimeout, true},
	CodeNotRecorded:     {"Transaksi TIDAK tercatat. Jangan berikan kode; hubungi teknisi.", "The transaction was NOT recorded. Give no code; call a technician.", http.StatusInternalServerError, true},
	CodeOutboxFull:      {"Penyimpanan catatan penuh karena lama tidak tersinkron. Periksa jaringan; hubungi teknisi.", "The record store is full because it has not synced for long. Check the network; call a technician.", http.StatusInsufficientStorage, true},
	CodeBadRequest:      {"Permintaan tidak valid.", "Invalid request.", http.StatusBadRequest, false},
	CodeUnknownService:  {"Layanan tidak dikenal pada terminal ini.", "Unknown service on this terminal.", http.StatusBadRequest, false},
	CodeNotAvailable:    {"Data ini tidak tersedia untuk kartu ini.", "This data is not available for this card.", http.StatusNotFound, false},
	CodeShuttingDown:    {"Agen sedang berhenti. Ulangi sebentar lagi.", "The agent is shutting down. Retry in a moment.", http.StatusServiceUnavailable, true},
	CodeSyncDisabled:    {"Sinkronisasi tidak dikonfigurasi pada terminal ini.", "Syncing is not configured on this terminal.", http.StatusConflict, false},
	CodeSyncFailed:      {"Sinkronisasi gagal; catatan tetap tersimpan dan akan dikirim ulang.", "Syncing failed; the records stay stored and will be sent again.", http.StatusBadGateway, true},
	CodeCardError:       {"Kartu tidak menjawab dengan benar. Cabut dan masukkan kembali kartu.", "The card did not answer correctly. Take it out and insert it again.", http.StatusUnprocessableEntity, true},
	"place-finger":      {"Letakkan jari pemegang kartu pada sensor sidik jari.", "Place the cardholder's finger on the fingerprint sensor.", 0, false},
	"recorded":          {"Autentikasi berhasil dan tercatat. Tuliskan kode autentikasi pada formulir.", "Authentication succeeded and is recorded. Write the authentication code on the form.", 0, false},
	CodeInternal:        {"Kesalahan internal agen. Hubungi teknisi.", "Internal agent error. Call a technician.", http.StatusInternalServerError, true},
}

// Failure is an error with its symbolic code; the daemon returns it for
// every failed workflow step.
type Failure struct {
	Code      string
	TriesLeft int
	Err       error // the cause, for logs (no personal data)
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Code + ": " + f.Err.Error()
	}
	return f.Code
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(code string, err error) *Failure { return &Failure{Code: code, Err: err} }

// Texts holds the clerk-facing messages with the configured overrides.
type Texts struct {
	ID, EN map[string]string
}

// Message returns code's message in lang ("en" or Bahasa Indonesia).
func (t Texts) Message(code, lang string) string {
	if lang == "en" {
		if s, ok := t.EN[code]; ok {
			return s
		}
		return messages[code].en
	}
	if s, ok := t.ID[code]; ok {
		return s
	}
	if m, ok := messages[code]; ok {
		return m.id
	}
	return messages[CodeInternal].id
}

// APIError makes err the API's error: its status and body.
func (t Texts) APIError(err error, lang string) (int, api.Error) {
	f := classify(err)
	m, ok := messages[f.Code]
	if !ok {
		m = messages[CodeInternal]
	}
	return m.status, api.Error{Code: f.Code, Message: t.Message(f.Code, lang), Retriable: m.retriable, TriesLeft: f.TriesLeft}
}

// classify finds the symbolic code of err.
func classify(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	code := CodeInternal
	switch {
	case err == nil:
		return &Failure{Code: CodeInternal, Err: errors.New("no error")}
	case errors.Is(err, context.Canceled):
		code = CodeCancelled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, apdu.ErrTimeout):
		code = CodeTimeout
	case errors.Is(err, apdu.ErrCardRemoved), errors.Is(err, apdu.ErrCardReset), errors.Is(err, cards.ErrSessionEnded) && !errors.Is(err, apdu.ErrNoService):
		code = CodeCardRemoved
	case errors.Is(err, apdu.ErrNoService):
		code = CodePCSCUnavailable
	case errors.Is(err, apdu.ErrSharingViolation):
		code = CodeReaderInUse
	case errors.Is(err, apdu.ErrNoReader):
		code = CodeNoReader
	case errors.Is(err, apdu.ErrNoCard):
		code = CodeNoCard
	case errors.Is(err, cards.ErrNoSAM):
		code = CodeNoSAM
	case errors.Is(err, sam.ErrBlocked):
		code = CodeSAMBlocked
	case errors.Is(err, sam.ErrNotActivated):
		code = CodeSAMNotActivated
	case errors.Is(err, cards.ErrFingerBlocked):
		code = CodeFingerBlocked
	case errors.Is(err, cards.ErrLastTry):
		code = CodeFingerLastTry
	case errors.Is(err, biometric.ErrPlaceAgain), errors.Is(err, sensor.ErrNoFinger), errors.Is(err, sensor.ErrTimeout):
		code = CodeFingerAgain
	case errors.Is(err, sensor.ErrSensor):
		code = CodeSensor
	case errors.Is(err, outbox.ErrFull):
		code = CodeOutboxFull
	case errors.Is(err, outbox.ErrNotRecorded), errors.Is(err, syscall.ENOSPC):
		code = CodeNotRecorded
	case isCardProtocol(err):
		code = CodeCardError
	}
	return &Failure{Code: code, Err: err}
}

func isCardProtocol(err error) bool {
	var se *apdu.StatusError
	return errors.As(err, &se) || errors.Is(err, apdu.ErrMalformedResponse) || errors.Is(err, apdu.ErrTransport)
}

// swLabel is the metrics label of an APDU failure: the status word, or
// the transport error's kind.
func swLabel(err error) string {
	var se *apdu.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%04X", se.SW)
	case errors.Is(err, apdu.ErrMalformedResponse):
		return "malformed"
	case errors.Is(err, apdu.ErrTimeout):
		return "timeout"
	case errors.Is(err, apdu.ErrCardRemoved), errors.Is(err, apdu.ErrCardReset):
		return "removed"
	case errors.Is(err, apdu.ErrTransport), errors.Is(err, apdu.ErrNoService):
		return "transport"
	}
	return ""
}
