package backoffice

import (
	"encoding/hex"
	"errors"
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
		// the sign-in checked the form's csrf_token and bounded the body
		// to 64 KiB: larger files go through the command line
		v := &renewalsPage{}
		file, hdr, err := r.FormFile("file")
		if err != nil {
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
			// the audit names the file and the count, not its rows (NIPs)
			if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditRenewalImport, hdr.Filename, r.RemoteAddr, "refused",
				strconv.Itoa(len(ie.Problems)+ie.More)+" problems"); err != nil {
				s.internal(w, log, err)
				return
			}
			show(w, r, http.StatusUnprocessableEntity, v)
		case err != nil:
			s.internal(w, log, err)
		default:
			if err := s.audit(r.Context(), PrincipalFrom(r.Context()), AuditRenewalImport, hex.EncodeToString(res.ImportID[:]), r.RemoteAddr, "ok",
				strconv.Itoa(len(res.Updates))+" updates staged from "+hdr.Filename); err != nil {
				s.internal(w, log, err)
				return
			}
			v.Staged = len(res.Updates)
			show(w, r, http.StatusOK, v)
		}
	}), renewalImportRoles...))
}
