package backoffice_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/pgtest"
	"kpe-agent/sync/backoffice"
)

var boss = &backoffice.Principal{Account: "boss", Roles: []backoffice.Role{backoffice.RoleAdmin}}

// noLedgerStore is a store that keeps neither top-ups nor a purse
// ledger: only the Store and its staff accounts show through.
type noLedgerStore struct {
	backoffice.Store
	backoffice.AccountStore
}

// The top-ups page: a verifier reads it (tabs with counts, the NIP
// filter), only an admin stages and cancels, through forms with the
// session's CSRF token; each form ends in a 303 back to the list with its
// notice, and what it did shows in the JSON API and the audit log; the
// refusals of StageTopUp are worded from the catalogue.
func TestTopUpsPage(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		ctx := context.Background()
		h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
		adm, tok := signedIn(t, l, h, boss)
		ver, verTok := signedIn(t, l, h, verifier)
		aud, _ := signedIn(t, l, h, auditor)
		inst, _ := signedIn(t, l, h, institution)

		// roles
		assert.Equal(t, 303, getPage(t, h, "/topups").status, "nobody signed in: to the sign-in")
		assert.Equal(t, 403, getPage(t, aud, "/topups").status)
		assert.Equal(t, 403, getPage(t, inst, "/topups").status)
		a := getPage(t, ver, "/topups")
		require.Equal(t, 200, a.status, a.body)
		assert.Contains(t, a.body, "Isi ulang dompet")
		assert.NotContains(t, a.body, `id="topup-stage"`, "a verifier stages nothing")
		assert.Equal(t, "no-store", a.header.Get("Cache-Control"))
		stage := url.Values{"nip": {topUpNIP}, "amount": {"1.250.000"}, "ref": {"TRF-PAGE-1"}}
		assert.Equal(t, 403, postForm(ver, "/topups", verTok, stage).status)
		assert.Equal(t, 403, postForm(adm, "/topups", "wrong", stage).status, "the session's CSRF token is required")
		ts, err := l.svc.TopUps(ctx, backoffice.TopUpFilter{})
		require.NoError(t, err)
		assert.Empty(t, ts)

		// stage: PRG with the notice
		a = postForm(adm, "/topups", tok, stage)
		require.Equal(t, http.StatusSeeOther, a.status, a.body)
		ts, err = l.svc.TopUps(ctx, backoffice.TopUpFilter{})
		require.NoError(t, err)
		require.Len(t, ts, 1)
		assert.Equal(t, uint32(1_250_000), ts[0].Amount)
		assert.Equal(t, "boss", ts[0].StagedBy)
		id := ts[0].View().ID
		assert.Equal(t, "/topups?done=staged&lang=id&topup="+id[:8], follow(a))
		a = getPage(t, adm, follow(a))
		require.Equal(t, 200, a.status)
		assert.Contains(t, a.body, "Isi ulang "+id[:8]+" disiapkan.")
		assert.Contains(t, a.body, "Rp 1.250.000")
		assert.Contains(t, a.body, "Menunggu kartu (1)")
		assert.Contains(t, a.body, `data-cancel="`+id+`"`)
		assert.Contains(t, a.body, `name="csrf_token" value="`+tok+`"`)
		a = getPage(t, ver, "/topups?lang=en")
		assert.Contains(t, a.body, "Rp 1,250,000")
		assert.Contains(t, a.body, "Staged (1)")
		assert.NotContains(t, a.body, "data-cancel", "a verifier cancels nothing")
		var list struct{ TopUps []backoffice.TopUpView }
		api := staffCall(ver, "GET", backoffice.PathTopUps, "")
		require.NoError(t, json.Unmarshal([]byte(api.body), &list))
		require.Len(t, list.TopUps, 1)
		assert.Equal(t, "TRF-PAGE-1", list.TopUps[0].Ref)
		e := auditOf(t, l.svc, backoffice.AuditTopUpStage, id)
		require.Len(t, e, 1)
		assert.Equal(t, "boss", e[0].Actor)
		assert.NotContains(t, e[0].Detail, topUpNIP)

		// the refusals, worded; the form keeps what was typed
		for _, c := range []struct {
			form   url.Values
			status int
			text   string
		}{
			{url.Values{"nip": {"12345"}, "amount": {"1000"}, "ref": {"TRF-X"}}, 400, "NIP harus 18 angka."},
			{url.Values{"nip": {topUpNIP}, "amount": {"nol"}, "ref": {"TRF-X"}}, 400, "Jumlah: bilangan bulat rupiah"},
			{url.Values{"nip": {topUpNIP}, "amount": {"0"}, "ref": {"TRF-X"}}, 400, "Jumlah: bilangan bulat rupiah"},
			{url.Values{"nip": {topUpNIP}, "amount": {"1000"}, "ref": {"TRF X"}}, 400, "Referensi: hanya huruf"},
			{url.Values{"nip": {topUpNIP}, "amount": {"1000"}, "ref": {strings.Repeat("R", 65)}}, 400, "Referensi: 1 sampai 64 karakter"},
			{url.Values{"nip": {topUpNIP}, "amount": {"1000"}, "ref": {"TRF-PAGE-1"}}, 409, "referensi ini sudah ada"},
			{url.Values{"nip": {topUpNIP}, "amount": {"39000000"}, "ref": {"TRF-BIG"}}, 422,
				"Isi ulang Rp 39.000.000 melewati batas bulanan: Rp 1.250.000 dari Rp 40.000.000 sudah dipakai pada "},
		} {
			a := postForm(adm, "/topups", tok, c.form)
			assert.Equal(t, c.status, a.status, "%v: %s", c.form, a.body)
			assert.Contains(t, a.body, c.text, c.form)
			assert.Contains(t, a.body, `id="stage-ref" name="ref" value="`+c.form.Get("ref")+`"`, "kept")
		}
		a = postForm(adm, "/topups?lang=en", tok, url.Values{"nip": {"1"}, "amount": {"1"}, "ref": {"R"}})
		assert.Contains(t, a.body, "The NIP is 18 digits.")

		// a second top-up of another NIP; the NIP filter
		other := "197501152000122002"
		require.Equal(t, 303, postForm(adm, "/topups", tok, url.Values{"nip": {other}, "amount": {"5000"}, "ref": {"TRF-PAGE-2"}}).status)
		a = getPage(t, ver, "/topups?status=all&nip="+other)
		require.Equal(t, 200, a.status)
		assert.Equal(t, 1, strings.Count(a.body, "<tr data-topup="))
		assert.Contains(t, a.body, "TRF-PAGE-2")
		assert.NotContains(t, a.body, "TRF-PAGE-1")
		assert.Equal(t, 400, getPage(t, ver, "/topups?status=lost").status)

		// cancel: PRG, the cancelled tab, the JSON API, the audit log
		a = postForm(adm, "/topups/"+id+"/cancel?lang=en", "wrong", nil)
		assert.Equal(t, 403, a.status)
		a = postForm(ver, "/topups/"+id+"/cancel", verTok, nil)
		assert.Equal(t, 403, a.status)
		a = postForm(adm, "/topups/"+id+"/cancel?lang=en", tok, nil)
		require.Equal(t, http.StatusSeeOther, a.status, a.body)
		assert.Equal(t, "/topups?done=cancelled&lang=en&topup="+id[:8], follow(a))
		a = getPage(t, adm, follow(a)+"&status=cancelled")
		assert.Contains(t, a.body, "Top-up "+id[:8]+" cancelled.")
		assert.Contains(t, a.body, "Cancelled (1)")
		assert.Contains(t, a.body, `data-topup="`+id+`" data-status="cancelled"`)
		api = staffCall(ver, "GET", backoffice.PathTopUps+"?status=cancelled", "")
		require.NoError(t, json.Unmarshal([]byte(api.body), &list))
		require.Len(t, list.TopUps, 1)
		assert.Equal(t, id, list.TopUps[0].ID)
		require.Len(t, auditOf(t, l.svc, backoffice.AuditTopUpCancel, id), 1)
		a = postForm(adm, "/topups/"+id+"/cancel", tok, nil)
		assert.Equal(t, 409, a.status)
		assert.Contains(t, a.body, "tidak dapat dibatalkan lagi")
		a = postForm(adm, "/topups/00/cancel", tok, nil)
		assert.Equal(t, 400, a.status)
		assert.Contains(t, a.body, "Nomor isi ulang tidak sah.")
		a = postForm(adm, "/topups/"+strings.Repeat("0", 32)+"/cancel", tok, nil)
		assert.Equal(t, 404, a.status)
		assert.Contains(t, a.body, "Isi ulang ini tidak ada.")
	})
}

// The purse page: the auditor roles only; a lookup by card serial shows
// the purse's view and its ledger rows (no NIP), a bad serial a clear
// error (400), an unknown card a plain message (200).
func TestPursesPage(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		_, _ = settleFixture(t, l)
		h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
		aud, _ := signedIn(t, l, h, auditor)
		adm, _ := signedIn(t, l, h, boss)
		ver, _ := signedIn(t, l, h, verifier)
		assert.Equal(t, 303, getPage(t, h, "/purses").status)
		assert.Equal(t, 403, getPage(t, ver, "/purses?serial=4b50450000000101").status)
		assert.Equal(t, 200, getPage(t, adm, "/purses").status)

		a := getPage(t, aud, "/purses")
		require.Equal(t, 200, a.status, a.body)
		assert.Contains(t, a.body, `id="purse-lookup"`)
		assert.NotContains(t, a.body, `id="ledger"`)
		assert.Equal(t, "no-store", a.header.Get("Cache-Control"))

		a = getPage(t, aud, "/purses?serial=4B50450000000101")
		require.Equal(t, 200, a.status, a.body)
		assert.Contains(t, a.body, `data-field="serial">4b50450000000101<`)
		assert.Contains(t, a.body, `data-field="ptcs">1 – 6<`)
		assert.Contains(t, a.body, `data-field="repeats">1<`)
		assert.Contains(t, a.body, `data-field="bad-proofs">1<`)
		assert.Contains(t, a.body, `data-field="missing" data-count="0">—<`)
		assert.Equal(t, 8, strings.Count(a.body, "<tr data-ptc="))
		assert.Contains(t, a.body, `data-proof="bad" data-counted="false"`)
		assert.Contains(t, a.body, "Salah · tidak dihitung")
		assert.Contains(t, a.body, "Rp 500.000", "the top-up's amount")
		assert.Contains(t, a.body, `<a href="/?code=`, "record codes link to the verify page")
		assert.NotContains(t, a.body, topUpNIP)
		assert.NotContains(t, a.body, `id="unknown"`)

		a = getPage(t, aud, "/purses?serial=4b5045&lang=en")
		assert.Equal(t, 400, a.status)
		assert.Contains(t, a.body, "The card serial is 16 hex digits")
		a = getPage(t, aud, "/purses?serial=zz50450000000101")
		assert.Equal(t, 400, a.status)
		assert.Contains(t, a.body, "16 digit heksadesimal")
		a = getPage(t, aud, "/purses?serial=0000000000000099")
		assert.Equal(t, 200, a.status, a.body)
		assert.Contains(t, a.body, "Belum ada rekaman dompet dari kartu ini yang masuk.")
	})
}

// The settlement page: the auditor roles; a day over shows its lines and
// totals as the CSV has them, with the download links; a day not over
// and a bad date say so; the default is the last day that can be settled.
func TestSettlementPage(t *testing.T) {
	eachStore(t, func(t *testing.T, l *lab) {
		date, want := settleFixture(t, l)
		later := time.Now().Add(48 * time.Hour)
		svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, Now: func() time.Time { return later }})
		require.NoError(t, err)
		h := svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
		aud, _ := signedIn(t, &lab{t: t, svc: svc}, h, auditor)
		ver, _ := signedIn(t, &lab{t: t, svc: svc}, h, verifier)
		assert.Equal(t, 403, getPage(t, ver, "/settlement").status)
		assert.Equal(t, 303, getPage(t, h, "/settlement").status)

		a := getPage(t, aud, "/settlement")
		require.Equal(t, 200, a.status, a.body)
		def := later.Add(-backoffice.SettlementGrace).Add(-24 * time.Hour).In(backoffice.SettlementZone).Format(time.DateOnly)
		assert.Contains(t, a.body, `data-date="`+def+`"`, "the last day that can be settled")
		assert.Contains(t, a.body, "Tidak ada pembayaran pada hari ini.")

		a = getPage(t, aud, "/settlement?date="+date)
		require.Equal(t, 200, a.status, a.body)
		var total, count int64
		for m, w := range want {
			assert.Contains(t, a.body, `data-merchant="`+m+`" data-payments="`+itoa(w[0])+`" data-amount="`+itoa(w[1])+`" data-net="`+itoa(w[1])+`"`, m)
			count += w[0]
			total += w[1]
		}
		assert.Contains(t, a.body, `id="settle-total" data-payments="`+itoa(count)+`" data-amount="`+itoa(total)+`"`)
		assert.Contains(t, a.body, `href="/v1/settlement/`+date+`?format=csv"`)
		assert.Contains(t, a.body, `href="/v1/settlement/`+date+`?format=xlsx"`)
		rec := staffCall(aud, "GET", "/v1/settlement/"+date+"?format=csv", "")
		require.Equal(t, 200, rec.status)
		assert.Contains(t, rec.body, "TOTAL,"+date+","+itoa(int64(len(want)))+","+itoa(count)+","+itoa(total))

		a = getPage(t, aud, "/settlement?date=2026-02-30&lang=en")
		assert.Equal(t, 400, a.status)
		assert.Contains(t, a.body, "2026-02-30 is not a date (YYYY-MM-DD).")
		open := settlementDay(later)
		a = getPage(t, aud, "/settlement?date="+open)
		assert.Equal(t, 409, a.status)
		assert.Contains(t, a.body, "Hari "+open+" belum selesai di WIB")
	})
}

func settlementDay(t time.Time) string { return t.In(backoffice.SettlementZone).Format(time.DateOnly) }

// A store without top-ups or a purse ledger: each page says so (200),
// staging is refused with the same message (503), nothing is a 500.
func TestEWalletPagesWithoutLedger(t *testing.T) {
	bolt, err := backoffice.OpenBolt(filepath.Join(t.TempDir(), "bo.db"))
	require.NoError(t, err)
	defer bolt.Close()
	l := newLab(t, noLedgerStore{bolt, bolt})
	h := l.svc.StaffHandler(backoffice.StaffConfig{Zone: wib})
	adm, tok := signedIn(t, l, h, boss)
	for path, text := range map[string]string{
		"/topups":                         "tidak menyimpan isi ulang",
		"/purses":                         "tidak menyimpan buku besar dompet",
		"/purses?serial=4b50450000000101": "tidak menyimpan buku besar dompet",
		"/settlement":                     "tidak menyimpan buku besar dompet",
		"/settlement?date=2020-01-01":     "tidak menyimpan buku besar dompet",
	} {
		a := getPage(t, adm, path)
		assert.Equal(t, 200, a.status, "%s: %s", path, a.body)
		assert.Contains(t, a.body, text, path)
	}
	assert.NotContains(t, getPage(t, adm, "/topups").body, `id="topup-stage"`, "no form where nothing can be staged")
	a := postForm(adm, "/topups", tok, url.Values{"nip": {topUpNIP}, "amount": {"1000"}, "ref": {"TRF-1"}})
	assert.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
	assert.Contains(t, a.body, "tidak menyimpan isi ulang")
}

// In headless Chromium, against PostgreSQL: an admin signs in, stages a
// top-up through the form, sees it in the staged tab, cancels it, looks
// a purse up by its serial, opens the settlement of a day with payments
// (its totals are the ledger's) and fetches its CSV through the link.
func TestEWalletPagesInChromium(t *testing.T) {
	st, err := backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	l := newLab(t, st)
	date, want := settleFixture(t, l)
	later := time.Now().Add(48 * time.Hour) // the fixture's day is over
	svc, err := backoffice.New(l.store, backoffice.Config{CA: l.ca.Pool(), Password: cheap, Now: func() time.Time { return later }})
	require.NoError(t, err)
	addAccount(t, svc, "admin.dewi", []backoffice.Role{backoffice.RoleAdmin})
	srv := httptest.NewServer(svc.StaffHandler(backoffice.StaffConfig{Zone: wib}))
	defer srv.Close()
	b := browsertest.Start(t, browsertest.WindowSize(1280, 1000))
	shot := func(name string) {
		if *staffShots != "" {
			require.NoError(t, os.MkdirAll(*staffShots, 0o755))
			b.Screenshot(filepath.Join(*staffShots, name+".png"))
		}
	}
	wait := func(expr string) { t.Helper(); b.Wait(expr, 10*time.Second) }

	b.Navigate(srv.URL + "/topups?lang=id")
	wait(`document.getElementById("login") !== null`)
	b.SetValue("#user", "admin.dewi")
	b.SetValue("#password", testPassword)
	b.Click("#signin")
	wait(`location.pathname === "/topups"`)
	assert.Equal(t, "Isi ulang dompet", b.Text("h1"))
	assert.Equal(t, "page", attr(b, `header nav a[href^="/topups"]`, "aria-current"))
	for _, p := range []string{"/purses", "/settlement"} {
		assert.NotEmpty(t, attr(b, `header nav a[href^="`+p+`"]`, "href"), "the menu links "+p)
	}

	// stage one through the form: back on the list (PRG), in the staged tab
	b.SetValue("#stage-nip", topUpNIP)
	b.SetValue("#stage-amount", "250000")
	b.SetValue("#stage-ref", "TRF-CHROME-1")
	b.Click("#stage-button")
	wait(`(document.getElementById("done") || {}).textContent?.includes("disiapkan")`)
	var at struct{ Path, Search string }
	b.Eval(`({Path: location.pathname, Search: location.search})`, &at)
	assert.Equal(t, "/topups", at.Path, "redirected to the list")
	assert.Contains(t, at.Search, "done=staged")
	row := `tr[data-ref="TRF-CHROME-1"]`
	assert.Equal(t, "staged", attr(b, row, "data-status"))
	assert.Equal(t, "Rp 250.000", b.Text(row+` [data-field="amount"]`))
	assert.Equal(t, "1", attr(b, `.tabs a[data-state="staged"]`, "data-count"))
	shot("topups-id")

	// cancel it: it leaves the staged tab for the cancelled one
	b.Click(row + ` button[data-cancel]`)
	wait(`(document.getElementById("done") || {}).textContent?.includes("dibatalkan")`)
	assert.Equal(t, "0", attr(b, `.tabs a[data-state="staged"]`, "data-count"))
	assert.Equal(t, "1", attr(b, `.tabs a[data-state="cancelled"]`, "data-count"))
	b.Navigate(srv.URL + attr(b, `.tabs a[data-state="cancelled"]`, "href"))
	wait(`document.querySelector('tr[data-ref="TRF-CHROME-1"]') !== null`)
	assert.Equal(t, "cancelled", attr(b, row, "data-status"))
	ts, err := svc.TopUps(context.Background(), backoffice.TopUpFilter{Status: backoffice.TopUpCancelled})
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, "TRF-CHROME-1", ts[0].Ref)

	// a purse by its serial
	b.Click(`header nav a[href^="/purses"]`)
	wait(`location.pathname === "/purses"`)
	b.SetValue("#serial", "4b50450000000101")
	b.Click("#lookup")
	wait(`document.getElementById("ledger") !== null`)
	var rows int
	b.Eval(`document.querySelectorAll("#ledger tbody tr").length`, &rows)
	assert.Equal(t, 8, rows)
	assert.Equal(t, "1 – 6", b.Text(`[data-field="ptcs"]`))
	assert.Equal(t, attr(b, `[data-field="reported"]`, "data-value"), attr(b, `[data-field="shadow"]`, "data-value"))
	shot("purses-id")

	// the settlement of the fixture's day, and its CSV through the link
	b.Navigate(srv.URL + "/settlement?lang=en&date=" + date)
	wait(`document.getElementById("settlement") !== null`)
	var count, total int64
	for m, w := range want {
		assert.Equal(t, strconv.FormatInt(w[1], 10), attr(b, `tr[data-merchant="`+m+`"]`, "data-amount"), m)
		count += w[0]
		total += w[1]
	}
	assert.Equal(t, strconv.FormatInt(count, 10), attr(b, "#settle-total", "data-payments"))
	assert.Equal(t, strconv.FormatInt(total, 10), attr(b, "#settle-total", "data-net"))
	shot("settlement-en")
	var got struct {
		Status int
		Type   string
		Body   string
	}
	b.Eval(`fetch(document.getElementById("csv").href).then(async r => ({Status: r.status, Type: r.headers.get("content-type"), Body: await r.text()}))`, &got)
	assert.Equal(t, 200, got.Status)
	assert.Equal(t, "text/csv; charset=utf-8", got.Type)
	assert.Contains(t, got.Body, "TOTAL,"+date+","+strconv.Itoa(len(want))+","+strconv.FormatInt(count, 10)+","+strconv.FormatInt(total, 10))
	require.Len(t, auditOf(t, svc, backoffice.AuditSettlement, date), 1, "the download is in the audit log")
}
