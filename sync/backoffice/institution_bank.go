package backoffice

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// The bank in the institutions' interface (docs/institutions.md, "The
// bank"): an institution registered with the one service ScopeBank is a
// bank. It sees the e-wallet's settlement and nothing else: GET
// settlement/{date}?format=csv|xlsx (the CSV, or the XLSX with its
// payments sheet: ledger rows, card serials, no NIP). Its verify and
// records requests are refused (403 out-of-scope), and every other
// institution's settlement requests are refused the same way. No
// institution registers the e-wallet's record services (payment, topup):
// their records reach institutions only as the bank's settlement.

// ScopeBank is the service that makes an institution the bank.
const ScopeBank = "bank"

// AuditSettlement is the audit action of a settlement file downloaded
// (by a bank, or by staff).
const AuditSettlement = "settlement"

// IsBank says whether in is registered as the bank.
func (in *Institution) IsBank() bool { return slices.Contains(in.Services, ScopeBank) }

// checkBankScope is CheckInstitution's rule for the bank scope: "bank"
// stands alone, and the e-wallet's services are nobody's.
func checkBankScope(in Institution) error {
	for _, s := range in.Services {
		if s == "payment" || s == "topup" {
			return fmt.Errorf("%w: %s: service %q: the e-wallet's records reach institutions only as the bank's settlement (service %q)",
				ErrInstitution, in.Name, s, ScopeBank)
		}
	}
	if in.IsBank() && len(in.Services) != 1 {
		return fmt.Errorf("%w: %s: service %q stands alone (the bank sees the settlement and nothing else)", ErrInstitution, in.Name, ScopeBank)
	}
	return nil
}

// scoped refuses a bank's requests to the records routes (bank false),
// and any other institution's to the bank's routes (bank true).
func (a *institutionAPI) scoped(bank bool, h func(http.ResponseWriter, *http.Request, *Institution)) func(http.ResponseWriter, *http.Request, *Institution) {
	return func(w http.ResponseWriter, r *http.Request, in *Institution) {
		if in.IsBank() != bank {
			what := "the bank sees the settlement only"
			if bank {
				what = "the settlement is the bank's only"
			}
			problem(w, http.StatusForbidden, "out-of-scope", what)
			return
		}
		h(w, r, in)
	}
}

// settlement answers GET settlement/{date}?format=csv|xlsx.
func (a *institutionAPI) settlement(w http.ResponseWriter, r *http.Request, in *Institution) {
	date := r.PathValue("date")
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	var buf bytes.Buffer
	status, kind, detail := settlementFile(r, a.s, date, format, &buf)
	outcome := "ok"
	if status != http.StatusOK {
		outcome = kind
	}
	if err := a.s.audit(r.Context(), auditActor(in), AuditSettlement, date, r.RemoteAddr, outcome, format); err != nil {
		a.s.internal(w, a.cfg.Log, err)
		return
	}
	if status == http.StatusInternalServerError {
		a.s.internal(w, a.cfg.Log, errors.New(detail))
		return
	}
	writeSettlement(w, status, kind, detail, date, format, &buf)
}

// settlementFile makes the settlement file of date in format into buf;
// anything but 200 comes with a problem kind and detail.
func settlementFile(r *http.Request, s *Service, date, format string, buf *bytes.Buffer) (status int, kind, detail string) {
	if format != "csv" && format != "xlsx" {
		return http.StatusBadRequest, "bad-format", fmt.Sprintf("format %q: want csv (the default) or xlsx", format)
	}
	var err error
	if format == "csv" {
		var st *Settlement
		if st, err = s.Settlement(r.Context(), date, nil); err == nil {
			err = WriteSettlementCSV(buf, st)
		}
	} else {
		err = s.SettlementXLSX(r.Context(), buf, date)
	}
	switch {
	case errors.Is(err, ErrSettlementDate):
		return http.StatusBadRequest, "bad-date", "the date must be YYYY-MM-DD (a settlement day in WIB, UTC+7)"
	case errors.Is(err, ErrSettlementOpen):
		return http.StatusConflict, "day-open", "the settlement day is not over yet in WIB (UTC+7); its file could still change"
	case errors.Is(err, ErrNoPurseLedger):
		return http.StatusNotImplemented, "no-purse-ledger", "this store keeps no purse ledger"
	case err != nil:
		return http.StatusInternalServerError, "internal", err.Error()
	}
	return http.StatusOK, "", ""
}

// writeSettlement answers a settlement file (status 200) or its problem.
func writeSettlement(w http.ResponseWriter, status int, kind, detail, date, format string, buf *bytes.Buffer) {
	if status != http.StatusOK {
		problem(w, status, kind, detail)
		return
	}
	ctype := "text/csv; charset=utf-8"
	if format == "xlsx" {
		ctype = XLSXType
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kpe-settlement-%s.%s"`, date, format))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}
