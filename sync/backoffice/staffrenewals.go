package backoffice

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// The staff page of card data renewals (docs/renewal.md, "Back office"):
// the staged updates by state with their counts; an admin imports a file
// there too (the same import as `kpe-backoffice renewal import`).

// MaxStaffRenewalUpload bounds the body of an upload on the staff page
// (the form with the file); larger files go through the command line.
const MaxStaffRenewalUpload = 64 << 10

// AuditOutcomeStarted is the outcome of the audit entry an upload writes
// before it stages anything; the entry of its result follows.
const AuditOutcomeStarted = "started"

// Who may see the renewals and who may import.
var (
	renewalRoles       = []Role{RoleVerifier, RoleAdmin}
	renewalImportRoles = []Role{RoleAdmin}
)

// renewalGroupLabels are the catalogue keys of the groups an update
// changes.
var renewalGroupLabels = map[int]string{2: "staff.renewal.group.employment", 3: "staff.renewal.group.family", 4: "staff.renewal.group.benefits"}

type renewalsPage struct {
	States   []renewalTab
	Rows     []renewalRow
	Upload   bool
	Staged   int      // updates staged by the upload just made
	Problems []string // why the upload was refused
}

type renewalTab struct {
	Key, Label string
	Count      int64
	Current    bool
}

type renewalRow struct {
	ID, Short, NIP, Status, StatusLabel string
	Groups                              []string
	Imported, Applied                   string
}

func (s *Service) renewalPages(mux *http.ServeMux, render renderFunc, log *slog.Logger, loc *time.Location) {
	show := func(w http.ResponseWriter, r *http.Request, status int, v *renewalsPage) {
		state := r.URL.Query().Get("status")
		switch RenewalStatus(state) {
		case "":
			state = string(RenewalStaged)
		case RenewalStaged, RenewalApplied, RenewalSuperseded, "all":
		default:
			problem(w, http.StatusBadRequest, "bad-status", "status: staged, applied, superseded or all")
			return
		}
		counts, err := s.RenewalCounts(r.Context())
		if err != nil {
			s.internal(w, log, err)
			return
		}
		var total int64
		for _, st := range RenewalStatuses {
			v.States = append(v.States, renewalTab{Key: string(st), Label: "staff.renewal.state." + string(st), Count: counts[st], Current: state == string(st)})
			total += counts[st]
		}
		v.States = append(v.States, renewalTab{Key: "all", Label: "staff.renewal.state.all", Count: total, Current: state == "all"})
		f := RenewalFilter{Status: RenewalStatus(state), Limit: 500}
		if state == "all" {
			f.Status = ""
		}
		us, err := s.RenewalUpdates(r.Context(), f)
		if err != nil {
			s.internal(w, log, err)
			return
		}
		for _, u := range us {
			id := hex.EncodeToString(u.ID[:])
			row := renewalRow{ID: id, Short: id[:8], NIP: u.NIP, Status: string(u.Status), StatusLabel: "staff.renewal.state." + string(u.Status),
				Imported: when(u.ImportedAt, loc), Applied: "—"}
			for _, dg := range u.Changed() {
				row.Groups = append(row.Groups, renewalGroupLabels[dg])
			}
			if u.Status == RenewalApplied {
				row.Applied = when(u.AppliedAt, loc) + " · " + u.AppliedTerminal
			}
			v.Rows = append(v.Rows, row)
		}
		v.Upload = PrincipalFrom(r.Context()).Has(renewalImportRoles...)
		render(w, r, status, "renewals", "staff.renewal.title", v)
	}
	mux.Handle("GET /renewals", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		show(w, r, http.StatusOK, &renewalsPage{})
	}), renewalRoles...))
	mux.Handle("POST /renewals", requireRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Bounded here, whichever way the CSRF token came: the sign-in
		// bounds the body only when it parses the form for the token, and
		// with the X-CSRF-Token header FormFile would parse an unbounded
		// multipart body (into temporary files beyond 32 MB). Larger files
		// go through the command line.
		r.Body = http.MaxBytesReader(w, r.Body, MaxStaffRenewalUpload)
		v := &renewalsPage{}
		file, hdr, err := r.FormFile("file")
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			v.Problems = []string{fmt.Sprintf("file: the upload is larger than %d KiB; import larger files with kpe-backoffice renewal import", MaxStaffRenewalUpload>>10)}
			show(w, r, http.StatusRequestEntityTooLarge, v)
			return
		case err != nil:
			v.Problems = []string{"file: " + err.Error()}
			show(w, r, http.StatusBadRequest, v)
			return
		}
		defer file.Close()
		format := strings.TrimPrefix(strings.ToLower(path.Ext(hdr.Filename)), ".")
		if format != FormatCSV && format != FormatJSON {
			v.Problems = []string{"file: name it .csv or .json"}
			show(w, r, http.StatusBadRequest, v)
			return
		}
		// The audit names the file and counts, never its rows (NIPs). The
		// attempt is written before anything is staged, so that a staged
		// import always has an entry even if the result's cannot be
		// written; the result's entry follows (refused, failed or ok).
		who := PrincipalFrom(r.Context())
		if err := s.audit(r.Context(), who, AuditRenewalImport, hdr.Filename, r.RemoteAddr, AuditOutcomeStarted,
			fmt.Sprintf("%s upload of %d bytes", format, hdr.Size)); err != nil {
			s.internal(w, log, err)
			return
		}
		res, err := s.ImportRenewals(r.Context(), format, file)
		var ie *ImportError
		switch {
		case errors.As(err, &ie):
			for _, p := range ie.Problems {
				v.Problems = append(v.Problems, p.String())
			}
			if ie.More > 0 {
				v.Problems = append(v.Problems, "…")
			}
			if err := s.audit(r.Context(), who, AuditRenewalImport, hdr.Filename, r.RemoteAddr, "refused",
				strconv.Itoa(len(ie.Problems)+ie.More)+" problems"); err != nil {
				s.internal(w, log, err)
				return
			}
			show(w, r, http.StatusUnprocessableEntity, v)
		case err != nil:
			// nothing staged; the entry is best effort, the error is the answer
			if aerr := s.audit(r.Context(), who, AuditRenewalImport, hdr.Filename, r.RemoteAddr, "failed", "not staged"); aerr != nil && log != nil {
				log.Error("renewal import: audit entry of the failure", "err", aerr)
			}
			s.internal(w, log, err)
		default:
			v.Staged = len(res.Updates)
			if err := s.audit(r.Context(), who, AuditRenewalImport, hex.EncodeToString(res.ImportID[:]), r.RemoteAddr, "ok",
				strconv.Itoa(len(res.Updates))+" updates staged from "+hdr.Filename); err != nil {
				// staged: its "started" entry stands in the log; the
				// answer says what happened, the log says what is missing
				if log != nil {
					log.Error("renewal import staged, but its audit result entry was not written", "import", hex.EncodeToString(res.ImportID[:]), "err", err)
				}
			}
			show(w, r, http.StatusOK, v)
		}
	}), renewalImportRoles...))
}
