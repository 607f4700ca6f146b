package backoffice

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"kpe-agent/sync/wire"
)

// The purse ledger on the staff listener (docs/backoffice.md, "The purse
// ledger"): GET /v1/purses/{serial} (the purse's view and its rows, no
// NIP) and GET /v1/settlement/{date}?format=csv|xlsx, for the auditor
// roles; a settlement download is in the audit log.

// PurseJSON is GET /v1/purses/{serial}'s answer.
type PurseJSON struct {
	CardSerial      string         `json:"card_serial"`
	FirstPTC        uint32         `json:"first_ptc"`
	LastPTC         uint32         `json:"last_ptc"`
	ShadowBalance   int64          `json:"shadow_balance"`
	ReportedBalance uint32         `json:"reported_balance"`
	Rows            int64          `json:"rows"`
	Repeats         int64          `json:"repeats"`
	BadProofs       int64          `json:"bad_proofs"`
	Missing         []wire.Range   `json:"missing"`
	Ledger          []PurseRowJSON `json:"ledger"`
}

// PurseRowJSON is a ledger row as the API shows it.
type PurseRowJSON struct {
	PTC          uint32    `json:"ptc"`
	Kind         string    `json:"kind"`
	Amount       uint32    `json:"amount"`
	BalanceAfter uint32    `json:"balance_after"`
	SAMSerial    string    `json:"sam_serial"`
	Counter      uint32    `json:"counter"`
	SAMTxn       uint32    `json:"sam_txn"`
	RecordID     string    `json:"record_id"`
	Code         string    `json:"code"`
	TerminalID   string    `json:"terminal_id"`
	Merchant     string    `json:"merchant,omitempty"`
	Reference    string    `json:"reference,omitempty"`
	TxnTime      time.Time `json:"txn_time"`
	ReceivedAt   time.Time `json:"received_at"`
	// SettlementDate: the settlement day the row is booked in (WIB).
	SettlementDate string `json:"settlement_date"`
	Proof          string `json:"proof"`
	Counted        bool   `json:"counted"`
}

// JSON is the row as the API shows it.
func (r *PurseRow) JSON() PurseRowJSON {
	return PurseRowJSON{PTC: r.PTC, Kind: r.Kind.String(), Amount: r.Amount, BalanceAfter: r.BalanceAfter, SAMSerial: hex.EncodeToString(r.SAMSerial[:]),
		Counter: r.Counter, SAMTxn: r.SAMTxn, RecordID: hex.EncodeToString(r.RecordID[:]), Code: r.Code, TerminalID: r.TerminalID,
		Merchant: r.Merchant, Reference: r.Reference, TxnTime: r.TxnTime, ReceivedAt: r.ReceivedAt, SettlementDate: r.settlementDay(), Proof: string(r.Proof), Counted: r.Counted}
}

// MaxPurseRows bounds the rows GET /v1/purses/{serial} answers (?limit=).
const MaxPurseRows = 10000

func (s *Service) purseRoutes(mux *http.ServeMux, log *slog.Logger, auditor func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /v1/purses/{serial}", auditor(func(w http.ResponseWriter, r *http.Request) {
		raw, err := hex.DecodeString(r.PathValue("serial"))
		if err != nil || len(raw) != 8 {
			problem(w, http.StatusBadRequest, "bad-serial", "the card serial is 16 hex digits")
			return
		}
		limit, err := strconv.Atoi(cmp.Or(r.URL.Query().Get("limit"), "1000"))
		if err != nil || limit < 1 || limit > MaxPurseRows {
			problem(w, http.StatusBadRequest, "bad-limit", "limit must be 1.."+strconv.Itoa(MaxPurseRows))
			return
		}
		v, rows, err := s.Purse(r.Context(), [8]byte(raw), limit)
		switch {
		case errors.Is(err, ErrNotFound):
			problem(w, http.StatusNotFound, "unknown-purse", "no purse record of this card has arrived")
			return
		case errors.Is(err, ErrNoPurseLedger):
			problem(w, http.StatusNotImplemented, "no-purse-ledger", "this store keeps no purse ledger")
			return
		case err != nil:
			s.internal(w, log, err)
			return
		}
		out := PurseJSON{CardSerial: hex.EncodeToString(v.CardSerial[:]), FirstPTC: v.FirstPTC, LastPTC: v.LastPTC, ShadowBalance: v.ShadowBalance,
			ReportedBalance: v.ReportedBalance, Rows: v.Rows, Repeats: v.Repeats, BadProofs: v.BadProofs, Missing: nonNil(v.Missing), Ledger: []PurseRowJSON{}}
		for i := range rows {
			out.Ledger = append(out.Ledger, rows[i].JSON())
		}
		writeJSON(w, http.StatusOK, out)
	}))
	mux.Handle("GET /v1/settlement/{date}", auditor(func(w http.ResponseWriter, r *http.Request) {
		date, format := r.PathValue("date"), cmp.Or(r.URL.Query().Get("format"), "csv")
		var buf bytes.Buffer
		status, kind, detail := settlementFile(r, s, date, format, &buf)
		if status == http.StatusInternalServerError {
			s.internal(w, log, errors.New(detail))
			return
		}
		if status == http.StatusOK {
			if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditSettlement, date, r.RemoteAddr, "ok", format); err != nil {
				s.internal(w, log, err)
				return
			}
		}
		writeSettlement(w, status, kind, detail, date, format, &buf)
	}))
}
