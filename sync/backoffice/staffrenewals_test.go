package backoffice_test

import (
	"bytes"
	"context"
	"mime/multipart"
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
	require.Len(t, audit, 2, "the refused and the staged upload")
	assert.Equal(t, "ok", audit[0].Outcome)
	assert.Equal(t, "boss", audit[0].Actor)
	assert.Contains(t, audit[0].Detail, "1 updates staged from changes.csv")
	assert.Equal(t, "refused", audit[1].Outcome)
	assert.Equal(t, "changes.csv", audit[1].Target)
	for _, e := range audit {
		assert.NotContains(t, e.Detail+e.Target, "198001012005011003", "no NIP in the audit log")
	}
}
