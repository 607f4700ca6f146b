package backoffice_test

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/sync/backoffice"
)

// upload is a multipart form with the file and the CSRF token.
func upload(t *testing.T, name, content, tok string) (body, contentType string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	require.NoError(t, w.WriteField("csrf_token", tok))
	f, err := w.CreateFormFile("file", name)
	require.NoError(t, err)
	f.Write([]byte(content))
	require.NoError(t, w.Close())
	return b.String(), w.FormDataContentType()
}

// The renewals page: a verifier and an admin read it (counts by state,
// the rows of the state chosen, in Indonesian and English), an auditor
// and an institution account are refused; an admin imports a file with
// the form (the session's CSRF token), all or nothing.
func TestRenewalsPage(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	ctx := context.Background()
	jsonF, err := os.ReadFile("testdata/renewal/changes.json")
	require.NoError(t, err)
	_, err = l.svc.ImportRenewals(ctx, "json", bytes.NewReader(jsonF))
	require.NoError(t, err)
	_, err = l.svc.ImportRenewals(ctx, "csv", strings.NewReader(csvHeader+"\n"+csvRow(renewalNIP, map[int]string{4: "III/d"})+"\n"))
	require.NoError(t, err)

	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	ver, verTok := signedIn(t, l, h, verifier)
	adm, admTok := signedIn(t, l, h, &backoffice.Principal{Account: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}})
	aud, _ := signedIn(t, l, h, auditor)
	inst, _ := signedIn(t, l, h, institution)

	a := getPage(t, ver, "/renewals")
	require.Equal(t, 200, a.status, a.body)
	assert.Contains(t, a.body, "Pembaruan data kartu")
	assert.Contains(t, a.body, "Menunggu kartu (2)")
	assert.Contains(t, a.body, "Digantikan (1)")
	assert.Contains(t, a.body, "Semua (3)")
	assert.Contains(t, a.body, "197501152000122002")
	assert.Contains(t, a.body, "Keluarga, Jaminan")
	assert.Equal(t, 2, strings.Count(a.body, `data-status="staged"`))
	assert.NotContains(t, a.body, `id="renewal-import"`, "a verifier imports nothing")
	a = getPage(t, ver, "/renewals?status=superseded&lang=en")
	require.Equal(t, 200, a.status)
	assert.Contains(t, a.body, "Card data renewals")
	assert.Equal(t, 1, strings.Count(a.body, `data-status="superseded"`))
	assert.Contains(t, a.body, "Employment")
	assert.Equal(t, 400, getPage(t, ver, "/renewals?status=lost").status)
	assert.Equal(t, 403, getPage(t, aud, "/renewals").status)
	assert.Equal(t, 403, getPage(t, inst, "/renewals").status)
	assert.Equal(t, 303, getPage(t, h, "/renewals").status, "nobody signed in: to the sign-in")

	a = getPage(t, adm, "/renewals")
	require.Equal(t, 200, a.status)
	assert.Contains(t, a.body, `id="renewal-import"`)
	assert.Contains(t, a.body, `href="/renewals?lang=id"`, "the navigation names the page")

	// a bad file: every problem, nothing staged
	bad := csvHeader + "\n" + csvRow("198001012005011003", nil) + "\n" + csvRow("198001012005011004", map[int]string{4: "IX/a"}) + "\n"
	body, ct := upload(t, "changes.csv", bad, admTok)
	a = staffCall(adm, "POST", "/renewals", body, "Content-Type", ct)
	assert.Equal(t, 422, a.status, a.body)
	assert.Contains(t, a.body, "row 3 golongan_ruang")
	assert.Contains(t, a.body, "tidak ada yang diimpor")
	counts, err := l.svc.RenewalCounts(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), counts[backoffice.RenewalStaged])

	// the session's token is required; a verifier may not import
	body, ct = upload(t, "changes.csv", csvHeader+"\n"+csvRow("198001012005011003", nil)+"\n", "wrong")
	assert.Equal(t, 403, staffCall(adm, "POST", "/renewals", body, "Content-Type", ct).status)
	body, ct = upload(t, "changes.csv", csvHeader+"\n"+csvRow("198001012005011003", nil)+"\n", verTok)
	assert.Equal(t, 403, staffCall(ver, "POST", "/renewals", body, "Content-Type", ct).status)
	body, ct = upload(t, "changes.xlsx", "x", admTok)
	assert.Equal(t, 400, staffCall(adm, "POST", "/renewals", body, "Content-Type", ct).status)

	body, ct = upload(t, "changes.csv", csvHeader+"\n"+csvRow("198001012005011003", nil)+"\n", admTok)
	a = staffCall(adm, "POST", "/renewals", body, "Content-Type", ct)
	require.Equal(t, 200, a.status, a.body)
	assert.Contains(t, a.body, "1 pembaruan disiapkan")
	assert.Contains(t, a.body, "198001012005011003")
	assert.Contains(t, a.body, "Menunggu kartu (3)")

	audit, err := l.svc.AuditLog(ctx, backoffice.AuditQuery{Action: backoffice.AuditRenewalImport, Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 4, "the refused and the staged upload, each its attempt and its result")
	assert.Equal(t, "ok", audit[0].Outcome)
	assert.Equal(t, "boss", audit[0].Actor)
	assert.Contains(t, audit[0].Detail, "1 updates staged from changes.csv")
	assert.Equal(t, backoffice.AuditOutcomeStarted, audit[1].Outcome)
	assert.Equal(t, "changes.csv", audit[1].Target)
	assert.Equal(t, "refused", audit[2].Outcome)
	assert.Equal(t, "changes.csv", audit[2].Target)
	assert.Equal(t, backoffice.AuditOutcomeStarted, audit[3].Outcome)
	for _, e := range audit {
		assert.NotContains(t, e.Detail+e.Target, "198001012005011003", "no NIP in the audit log")
	}
}

// headerUpload is a staff upload whose CSRF token comes in the
// X-CSRF-Token header, as a script sends it, not in the form.
func headerUpload(t *testing.T, h http.Handler, tok, name, content string) answer {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, err := w.CreateFormFile("file", name)
	require.NoError(t, err)
	f.Write([]byte(content))
	require.NoError(t, w.Close())
	return staffCall(h, "POST", "/renewals", b.String(), "Content-Type", w.FormDataContentType(), "X-CSRF-Token", tok)
}

// The upload is bounded to MaxStaffRenewalUpload however the CSRF token
// comes: with the X-CSRF-Token header (the sign-in then parses no form)
// a larger body is 413 with the page's error, and nothing is staged; a
// small one in the same form is imported.
func TestRenewalsUploadBoundedWithHeaderToken(t *testing.T) {
	st, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer st.Close()
	l := newLab(t, st)
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, tok := signedIn(t, l, h, &backoffice.Principal{Account: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}})

	// a good file the CSV reader would take whole (blank lines are skipped)
	big := csvHeader + "\n" + csvRow("198001012005011003", nil) + "\n" + strings.Repeat("\n", backoffice.MaxStaffRenewalUpload)
	a := headerUpload(t, adm, tok, "changes.csv", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.body)
	assert.Contains(t, a.body, "larger than 64 KiB")
	assert.Contains(t, a.body, "Pembaruan data kartu", "the page, with its error")
	counts, err := l.svc.RenewalCounts(context.Background())
	require.NoError(t, err)
	assert.Zero(t, counts[backoffice.RenewalStaged], "nothing staged")

	a = headerUpload(t, adm, tok, "changes.csv", csvHeader+"\n"+csvRow("198001012005011003", nil)+"\n")
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Contains(t, a.body, "1 pembaruan disiapkan")
}

// auditFailStore is a bbolt store whose audit log refuses the entries
// fail picks.
type auditFailStore struct {
	*backoffice.BoltStore
	fail func(e *backoffice.AuditEntry) bool
}

func (s *auditFailStore) AppendAudit(ctx context.Context, e *backoffice.AuditEntry) error {
	if s.fail != nil && s.fail(e) {
		return errors.New("audit log unavailable")
	}
	return s.BoltStore.AppendAudit(ctx, e)
}

// A staged import always has an audit entry: its attempt is written
// before anything is staged. When the result's entry cannot be written,
// the import stays staged (the answer says so) and the attempt's entry
// names it; when the attempt's cannot be written, nothing is staged (503).
func TestRenewalsUploadAuditedWhenTheResultEntryFails(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	st := &auditFailStore{BoltStore: bolt}
	l := newLab(t, st)
	ctx := context.Background()
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, tok := signedIn(t, l, h, &backoffice.Principal{Account: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}})

	st.fail = func(e *backoffice.AuditEntry) bool {
		return e.Action == backoffice.AuditRenewalImport && e.Outcome == "ok"
	}
	body, ct := upload(t, "first.csv", csvHeader+"\n"+csvRow("198001012005011003", nil)+"\n", tok)
	a := staffCall(adm, "POST", "/renewals", body, "Content-Type", ct)
	require.Equal(t, http.StatusOK, a.status, a.body)
	assert.Contains(t, a.body, "1 pembaruan disiapkan", "the import is staged, and the answer says so")
	staged, err := l.svc.RenewalUpdates(ctx, backoffice.RenewalFilter{Status: backoffice.RenewalStaged})
	require.NoError(t, err)
	require.Len(t, staged, 1)
	audit, err := l.svc.AuditLog(ctx, backoffice.AuditQuery{Action: backoffice.AuditRenewalImport, Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 1, "the staged import has its entry")
	assert.Equal(t, backoffice.AuditOutcomeStarted, audit[0].Outcome)
	assert.Equal(t, "boss", audit[0].Actor)
	assert.Equal(t, "first.csv", audit[0].Target)
	assert.True(t, !audit[0].At.After(staged[0].ImportedAt), "written before the staging")

	st.fail = func(e *backoffice.AuditEntry) bool { return e.Action == backoffice.AuditRenewalImport }
	body, ct = upload(t, "second.csv", csvHeader+"\n"+csvRow("198001012005011004", nil)+"\n", tok)
	a = staffCall(adm, "POST", "/renewals", body, "Content-Type", ct)
	assert.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
	counts, err := l.svc.RenewalCounts(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), counts[backoffice.RenewalStaged], "no entry, nothing staged")
}
