package backoffice

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kpe-agent/internal/i18n"
)

// The e-wallet's staff pages (docs/ewallet.md, "Staff pages"): the
// staged top-ups (/topups, with the staging form and the cancel
// buttons), a purse's ledger by card serial (/purses) and a day's
// settlement per merchant (/settlement). They call the same Service
// methods as the JSON APIs (httptopup.go, staffpurse.go) under the same
// roles, and write the same audit entries; the forms carry the
// session's CSRF token, which the sign-in checks before any handler
// runs. A store that keeps no top-ups or no purse ledger gets the page
// with a message saying so.

// topUpPageRows bounds the rows of one tab of /topups.
const topUpPageRows = 500

// pursePageRows bounds the ledger rows /purses shows.
const pursePageRows = 1000

// topUpsDone are the notices after a form (?done=), by the change.
var topUpsDone = map[string]string{
	"staged":    "staff.topup.done.staged",
	"cancelled": "staff.topup.done.cancelled",
}

// rupiah is n rupiah as the language writes it: "Rp 1.250.000" in
// Bahasa Indonesia, "Rp 1,250,000" in English.
func rupiah(l i18n.Lang, n int64) string {
	sep := ","
	if l == i18n.Indonesian {
		sep = "."
	}
	neg := n < 0
	if neg {
		n = -n
	}
	digits := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if neg {
		return "−Rp " + b.String()
	}
	return "Rp " + b.String()
}

// Rp is n rupiah in the page's language.
func (d *pageData) Rp(n int64) string { return rupiah(d.Lang, n) }

// parseRupiah reads an amount typed on a staff form: whole rupiah, as
// digits alone or grouped by thousands with one kind of separator (".",
// "," or a space: "1.250.000", "1,250,000", "1 250 000"). Anything else
// is refused rather than guessed: "1,5" or "12.50" are not read as 15 or
// 1250.
func parseRupiah(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("no amount")
	}
	digits := s
	if i := strings.IndexAny(s, ". ,"); i >= 0 {
		groups := strings.Split(s, s[i:i+1])
		for k, g := range groups {
			if (k == 0 && (len(g) < 1 || len(g) > 3)) || (k > 0 && len(g) != 3) {
				return 0, fmt.Errorf("amount %q: not grouped by thousands", s)
			}
		}
		digits = strings.Join(groups, "")
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q: not whole rupiah", s)
		}
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return uint32(n), nil
}

// topUpsPage is /topups' view.
type topUpsPage struct {
	States  []renewalTab
	Rows    []topUpRow
	NIP     string // the filter
	Stage   bool   // the principal may stage and cancel
	Done    string // catalogue key of the notice
	DoneID  string
	Error   string // catalogue key of the error
	Message string // the error in the page's language (localise)
	limit   *TopUpLimitError
	NoStore bool // the store keeps no top-ups
	Form    TopUpRequest
	Amount  string // the amount field as typed
}

type topUpRow struct {
	ID, Short, NIP, Ref, StagedBy, StagedAt, Status, StatusLabel string
	Amount                                                       int64
	Applied, Code                                                string
	Cancel                                                       bool
}

// localise words the error; the limit's amounts are the refusal's.
func (p *topUpsPage) localise(d *pageData) {
	switch {
	case p.Error == "":
	case p.limit != nil:
		p.Message = d.T(p.Error, d.Rp(int64(p.limit.Amount)), d.Rp(int64(p.limit.Used)), d.Rp(int64(p.limit.Limit)), p.limit.Month)
	case p.Error == "staff.topup.err.ref-length":
		p.Message = d.T(p.Error, maxTopUpRef)
	default:
		p.Message = d.T(p.Error)
	}
}

// topUpErr is the catalogue key and status of a staging or cancelling
// error; ok is false for an error the user cannot mend (internal).
func topUpErr(err error, p *topUpsPage) (key string, status int, ok bool) {
	var le *TopUpLimitError
	var fe *TopUpFieldError
	switch {
	case errors.As(err, &le):
		p.limit = le
		return "staff.topup.err.limit", http.StatusUnprocessableEntity, true
	case errors.Is(err, ErrTopUpRef):
		return "staff.topup.err.ref-exists", http.StatusConflict, true
	case errors.As(err, &fe):
		switch {
		case fe.Field == TopUpFieldNIP:
			return "staff.topup.err.nip", http.StatusBadRequest, true
		case fe.Field == TopUpFieldAmount:
			return "staff.topup.err.amount", http.StatusBadRequest, true
		case fe.NotASCII:
			return "staff.topup.err.ref-ascii", http.StatusBadRequest, true
		}
		return "staff.topup.err.ref-length", http.StatusBadRequest, true
	case errors.Is(err, ErrTopUpQuery): // ParseTopUpID
		return "staff.topup.err.id", http.StatusBadRequest, true
	case errors.Is(err, ErrNotFound):
		return "staff.topup.err.unknown", http.StatusNotFound, true
	case errors.Is(err, ErrTopUpState):
		return "staff.topup.err.state", http.StatusConflict, true
	case errors.Is(err, ErrNoTopUps):
		p.NoStore = true
		return "staff.topup.no-store", http.StatusServiceUnavailable, true
	}
	return "", 0, false
}

// pursesPage is /purses' view.
type pursesPage struct {
	Serial   string
	Error    string // catalogue key
	NoStore  bool
	Unknown  bool
	Purse    *purseSummary
	Rows     []purseLedgerRow
	Showing  int
	Complete bool
}

type purseSummary struct {
	Serial                                 string
	Shadow, Reported                       int64
	FirstPTC, LastPTC                      uint32
	Rows, Repeats, BadProofs, MissingCount int64
	Missing                                string
}

type purseLedgerRow struct {
	PTC                                      uint32
	Kind, KindLabel                          string
	Amount, Balance                          int64
	Time, Terminal, Merchant, Ref            string
	Proof, ProofLabel, Code, Verify, Settled string
	Counted                                  bool
}

// settlementPage is /settlement's view.
type settlementPage struct {
	Date      string
	Default   string // the last settled day
	Error     string // catalogue key
	NoStore   bool
	Lines     []SettlementLine
	Total     SettlementLine
	Shown     bool
	CSV, XLSX string
}

// lastSettledDay is the latest settlement day that can be settled at
// now (SettlementDay): yesterday in WIB once SettlementGrace has passed
// after midnight WIB, the day before until then.
func lastSettledDay(now time.Time) string {
	return settlementDate(now.Add(-SettlementGrace).Add(-24 * time.Hour))
}

// ewalletPages registers /topups, /purses and /settlement on mux.
func (s *Service) ewalletPages(mux *http.ServeMux, render renderFunc, log *slog.Logger, loc *time.Location) {
	showTopUps := func(w http.ResponseWriter, r *http.Request, status int, v *topUpsPage) {
		q := r.URL.Query()
		state := cmp.Or(q.Get("status"), string(TopUpStaged))
		if state != "all" && !containsStatus(TopUpStatus(state)) {
			problem(w, http.StatusBadRequest, "bad-status", "status: staged, authorised, applied, cancelled or all")
			return
		}
		v.NIP = strings.TrimSpace(q.Get("nip"))
		v.Stage = PrincipalFrom(r.Context()).Has(topUpStageRoles...)
		// every top-up of the filter, counted by state; the tab's shown
		ts, err := s.TopUps(r.Context(), TopUpFilter{NIP: v.NIP})
		switch {
		case errors.Is(err, ErrNoTopUps):
			v.NoStore, v.Stage = true, false
		case err != nil:
			s.internal(w, log, err)
			return
		}
		counts := map[TopUpStatus]int64{}
		for _, t := range ts {
			counts[t.Status]++
			if (state == "all" || string(t.Status) == state) && len(v.Rows) < topUpPageRows {
				v.Rows = append(v.Rows, topUpRowOf(t, loc, v.Stage))
			}
		}
		kv := []string{}
		if v.NIP != "" {
			kv = append(kv, "nip", v.NIP)
		}
		for _, st := range TopUpStatuses {
			v.States = append(v.States, renewalTab{Key: string(st), Label: "staff.topup.state." + string(st), Count: counts[st], Current: state == string(st)})
		}
		v.States = append(v.States, renewalTab{Key: "all", Label: "staff.topup.state.all", Count: int64(len(ts)), Current: state == "all"})
		render(w, r, status, "topups", "staff.topup.title", v)
	}
	mux.Handle("GET /topups", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &topUpsPage{}
		if key, ok := topUpsDone[r.URL.Query().Get("done")]; ok {
			v.Done, v.DoneID = key, r.URL.Query().Get("topup")
		}
		showTopUps(w, r, http.StatusOK, v)
	}), topUpRoles...))
	// answer ends a form: 303 back to the list with its notice (PRG), or
	// the page again with the error in the page's language.
	answer := func(w http.ResponseWriter, r *http.Request, err error, done, id string, v *topUpsPage) {
		if err == nil {
			q := url.Values{"lang": {string(pageLang(r))}, "done": {done}, "topup": {id}}
			http.Redirect(w, r, "/topups?"+q.Encode(), http.StatusSeeOther)
			return
		}
		key, status, ok := topUpErr(err, v)
		if !ok {
			s.internal(w, log, err)
			return
		}
		v.Error = key
		showTopUps(w, r, status, v)
	}
	// the forms: the sign-in checked the csrf_token (and bounded the body)
	mux.Handle("POST /topups", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &topUpsPage{Amount: strings.TrimSpace(r.PostFormValue("amount"))}
		v.Form = TopUpRequest{NIP: strings.TrimSpace(r.PostFormValue("nip")), Ref: strings.TrimSpace(r.PostFormValue("ref"))}
		amount, err := parseRupiah(v.Amount)
		if err != nil {
			answer(w, r, &TopUpFieldError{Field: TopUpFieldAmount, Reason: "a whole number of rupiah"}, "", "", v)
			return
		}
		v.Form.Amount = amount // 0 is StageTopUp's refusal, the same field error
		who := PrincipalFrom(r.Context())
		t, err := s.StageTopUp(r.Context(), v.Form, who.Account)
		if err != nil {
			answer(w, r, err, "", "", v)
			return
		}
		id := hex.EncodeToString(t.ID[:])
		if err := s.audit(r.Context(), who, AuditTopUpStage, id, r.RemoteAddr, "ok", fmt.Sprintf("Rp %d, ref %s", t.Amount, t.Ref)); err != nil && log != nil {
			log.Error("top-up staged, but its audit entry was not written", "topup", id, "err", err)
		}
		answer(w, r, nil, "staged", id[:8], v)
	}), topUpStageRoles...))
	mux.Handle("POST /topups/{id}/cancel", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &topUpsPage{}
		id, err := ParseTopUpID(r.PathValue("id"))
		if err == nil {
			err = s.CancelTopUp(r.Context(), id)
		}
		if err != nil {
			answer(w, r, err, "", "", v)
			return
		}
		hexID := hex.EncodeToString(id[:])
		if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditTopUpCancel, hexID, r.RemoteAddr, "ok", ""); err != nil && log != nil {
			log.Error("top-up cancelled, but its audit entry was not written", "topup", hexID, "err", err)
		}
		answer(w, r, nil, "cancelled", hexID[:8], v)
	}), topUpStageRoles...))

	mux.Handle("GET /purses", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &pursesPage{Serial: strings.ToLower(strings.TrimSpace(r.URL.Query().Get("serial")))}
		if _, ok := s.store.(PurseStore); !ok {
			v.NoStore = true
			render(w, r, http.StatusOK, "purses", "staff.purse.title", v)
			return
		}
		if v.Serial == "" {
			render(w, r, http.StatusOK, "purses", "staff.purse.title", v)
			return
		}
		raw, err := hex.DecodeString(v.Serial)
		if err != nil || len(raw) != 8 {
			v.Error = "staff.purse.bad-serial"
			render(w, r, http.StatusBadRequest, "purses", "staff.purse.title", v)
			return
		}
		pv, rows, err := s.Purse(r.Context(), [8]byte(raw), pursePageRows)
		switch {
		case errors.Is(err, ErrNotFound):
			v.Unknown = true
		case errors.Is(err, ErrNoPurseLedger):
			v.NoStore = true
		case err != nil:
			s.internal(w, log, err)
			return
		default:
			v.Purse = purseSummaryOf(pv)
			for i := range rows {
				v.Rows = append(v.Rows, purseLedgerRowOf(&rows[i], loc))
			}
			v.Showing = len(rows)
			v.Complete = int64(len(rows)) >= pv.Rows+pv.Repeats+pv.BadProofs
		}
		render(w, r, http.StatusOK, "purses", "staff.purse.title", v)
	}), auditRoles...))

	mux.Handle("GET /settlement", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &settlementPage{Default: lastSettledDay(s.cfg.Now())}
		v.Date = cmp.Or(strings.TrimSpace(r.URL.Query().Get("date")), v.Default)
		status := http.StatusOK
		st, err := s.Settlement(r.Context(), v.Date, nil)
		switch {
		case errors.Is(err, ErrSettlementDate):
			v.Error, status = "staff.settle.bad-date", http.StatusBadRequest
		case errors.Is(err, ErrSettlementOpen):
			v.Error, status = "staff.settle.open", http.StatusConflict
		case errors.Is(err, ErrNoPurseLedger):
			v.NoStore = true
		case err != nil:
			s.internal(w, log, err)
			return
		default:
			v.Shown, v.Lines, v.Total = true, st.Lines, st.Total
			base := "/v1/settlement/" + url.PathEscape(v.Date)
			v.CSV, v.XLSX = base+"?format=csv", base+"?format=xlsx"
		}
		render(w, r, status, "settlement", "staff.settle.title", v)
	}), auditRoles...))
}

func topUpRowOf(t TopUp, loc *time.Location, stage bool) topUpRow {
	id := hex.EncodeToString(t.ID[:])
	row := topUpRow{ID: id, Short: id[:8], NIP: t.NIP, Ref: t.Ref, StagedBy: t.StagedBy, StagedAt: when(t.StagedAt, loc), Amount: int64(t.Amount),
		Status: string(t.Status), StatusLabel: "staff.topup.state." + string(t.Status), Applied: "—",
		Cancel: stage && t.Status == TopUpStaged} // CancelTopUp refuses a top-up with an authorisation out
	if t.Status == TopUpApplied {
		row.Applied, row.Code = when(t.AppliedAt, loc), t.AppliedCode
	}
	return row
}

func purseSummaryOf(v *PurseView) *purseSummary {
	out := &purseSummary{Serial: hex.EncodeToString(v.CardSerial[:]), Shadow: v.ShadowBalance, Reported: int64(v.ReportedBalance),
		FirstPTC: v.FirstPTC, LastPTC: v.LastPTC, Rows: v.Rows, Repeats: v.Repeats, BadProofs: v.BadProofs, Missing: "—"}
	var parts []string
	for _, g := range v.Missing {
		out.MissingCount += int64(g.To-g.From) + 1
		if g.From == g.To {
			parts = append(parts, strconv.FormatUint(uint64(g.From), 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d–%d", g.From, g.To))
		}
	}
	if len(parts) > 0 {
		out.Missing = strings.Join(parts, ", ")
	}
	return out
}

func purseLedgerRowOf(r *PurseRow, loc *time.Location) purseLedgerRow {
	kind := r.Kind.String()
	row := purseLedgerRow{PTC: r.PTC, Kind: kind, KindLabel: "staff.purse.kind." + kind, Amount: int64(r.Amount), Balance: int64(r.BalanceAfter),
		Time: when(r.TxnTime, loc), Terminal: cmp.Or(r.TerminalID, "—"), Merchant: cmp.Or(r.Merchant, "—"), Ref: cmp.Or(r.Reference, "—"),
		Proof: string(r.Proof), ProofLabel: "staff.purse.proof." + string(r.Proof), Code: r.Code, Settled: r.settlementDay(), Counted: r.Counted}
	if !r.Kind.Valid() {
		row.KindLabel = "staff.purse.kind.other"
	}
	if r.Code != "" {
		row.Verify = "/?" + url.Values{"code": {r.Code}}.Encode()
	}
	return row
}
