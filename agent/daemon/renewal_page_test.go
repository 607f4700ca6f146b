package daemon_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"kpe-agent/agent/api"
	"kpe-agent/internal/browsertest"
	"kpe-agent/internal/i18n"
	"kpe-agent/lab/cardsim"
	"kpe-agent/lab/pcsctest"
	"kpe-agent/sync/record"
)

// budiPromotionCSV is a SAPK change for kpe-budi (the import format of
// docs/renewal.md): promoted from Pembina Utama Muda IV/c to Pembina
// Utama Madya IV/d, and a sixth family member, a newborn child. The other
// fields are the card's (testdata/cards/lab/spec.json), so only those two
// and the TMT change.
const budiPromotionCSV = `nip,groups,status,pangkat,golongan_ruang,tmt_pangkat,jabatan,tmt_jabatan,parent_agency,working_agency,unit_1,unit_2,unit_3,work_location,` +
	`member_1_kind,member_1_name,member_1_nik,member_1_birth_date,member_1_relation,member_1_dependant,member_1_kpe_tambahan,` +
	`member_2_kind,member_2_name,member_2_nik,member_2_birth_date,member_2_relation,member_2_dependant,` +
	`member_3_kind,member_3_name,member_3_nik,member_3_birth_date,member_3_relation,member_3_dependant,` +
	`member_4_kind,member_4_name,member_4_nik,member_4_birth_date,member_4_relation,member_4_dependant,` +
	`member_5_kind,member_5_name,member_5_nik,member_5_birth_date,member_5_relation,member_5_dependant,member_5_kpe_tambahan,` +
	`member_6_kind,member_6_name,member_6_nik,member_6_birth_date,member_6_relation,member_6_dependant
197208172000031002,employment;family,PNS,Pembina Utama Madya,IV/d,20261001,Kepala Bidang Pelayanan Kesehatan,20210105,` +
	`Pemerintah Daerah Daerah Istimewa Yogyakarta,Dinas Kesehatan Daerah Istimewa Yogyakarta,Dinas Kesehatan,Bidang Pelayanan Kesehatan,Seksi Pelayanan Kesehatan Rujukan,Kota Yogyakarta,` +
	`spouse,"Sri Wahyuni, S.Pd.",3471015503750002,19750315,Istri,Y,0000000000000102,` +
	`child,Andi Prasetyo,3471011204010001,20010412,Anak Kandung,N,` +
	`child,Rina Kusumawati,3471014807040002,20040708,Anak Kandung,Y,` +
	`child,Dimas Nugroho,3471010902080003,20080209,Anak Kandung,Y,` +
	`child,Putri Ayu Lestari,3471016111120004,20121121,Anak Kandung,Y,0000000000000103,` +
	`child,Bayu Aji Santoso,3471010305260005,20260503,Anak Kandung,Y
`

// newChild is the family member budiPromotionCSV adds, as the comparison
// words it in Bahasa Indonesia.
const newChild = "Bayu Aji Santoso (Anak, 3 Mei 2026, Tanggungan)"

// renewalRig is the renewal rig (newRenewalRig) with budiPromotionCSV
// staged at its back office, through the CSV form of the import.
func renewalRig(t *testing.T) *rig {
	r := newRenewalRig(t, rigOptions{})
	res, err := r.svc.ImportRenewals(context.Background(), "csv", strings.NewReader(budiPromotionCSV))
	require.NoError(t, err)
	require.Len(t, res.Updates, 1)
	assert.Equal(t, []int{2, 3}, res.Updates[0].Changed())
	return r
}

// renewalRecords counts the renewal records in the agent's outbox.
func (r *rig) renewalRecords(t *testing.T) int {
	t.Helper()
	items, err := r.ob.Recent(time.Time{}, 1000)
	require.NoError(t, err)
	n := 0
	for _, it := range items {
		rec, err := record.Decode(it.Encoded)
		require.NoError(t, err)
		if rec.Service == record.ServiceRenewal {
			n++
		}
	}
	return n
}

// verifyUploaded sends the outbox now and has the back office verify
// code: a renewal record of the terminal.
func (r *rig) verifyUploaded(t *testing.T, code string) {
	t.Helper()
	r.syncNow(t)
	v, err := r.svc.Verify(context.Background(), code)
	require.NoError(t, err)
	assert.True(t, v.Valid, "the back office verifies the renewal's code")
	assert.Equal(t, record.ServiceRenewal, v.Service)
	assert.Equal(t, terminal, v.TerminalID)
}

// compareRow is a row of the renewal's comparison as shown: the field's
// label, its value on the card and its new value, and whether it is
// marked changed.
type compareRow struct {
	Label   string `json:"label"`
	Card    string `json:"card"`
	New     string `json:"new"`
	Changed bool   `json:"changed"`
}

// kioskRows reads the kiosk's comparison table.
func kioskRows(b *browsertest.Browser) []compareRow {
	var out []compareRow
	b.Eval(`[...document.querySelectorAll("#renewal-fields tr")].map((tr) => ({label: tr.cells[0].textContent,
		card: tr.cells[1].textContent, new: tr.cells[2].textContent, changed: tr.classList.contains("changed")}))`, &out)
	return out
}

// loketRows reads the counter's comparison: two definition lists side by
// side, a row marked changed on both.
func loketRows(b *browsertest.Browser) []compareRow {
	var out []compareRow
	b.Eval(`(() => { const side = (id) => [...document.getElementById(id).querySelectorAll("dt")].map((dt) =>
			({label: dt.textContent, value: dt.nextElementSibling.textContent, changed: dt.classList.contains("changed") && dt.nextElementSibling.classList.contains("changed")}));
		const c = side("renewal-card-fields"), n = side("renewal-new-fields");
		if (c.length !== n.length) return [];
		return n.map((f, i) => ({label: f.label, card: c[i].label === f.label ? c[i].value : "?", new: f.value, changed: f.changed && c[i].changed})); })()`, &out)
	return out
}

// row finds the row labelled label.
func row(t *testing.T, rows []compareRow, label string) compareRow {
	t.Helper()
	for _, r := range rows {
		if r.Label == label {
			return r
		}
	}
	t.Fatalf("no field %q in %+v", label, rows)
	return compareRow{}
}

// compareShown checks the comparison of budiPromotionCSV in lang: the new
// child worded child, a field the card lacks shown as absent.
func compareShown(t *testing.T, rows []compareRow, lang i18n.Lang, child, absent string) {
	t.Helper()
	require.NotEmpty(t, rows)
	pangkat := lang.T("kiosk.renewal.field.employment.pangkat")
	assert.Equal(t, compareRow{pangkat, "Pembina Utama Muda IV/c", "Pembina Utama Madya IV/d", true}, row(t, rows, pangkat))
	tmt := row(t, rows, lang.T("kiosk.renewal.field.employment.tmt-pangkat"))
	assert.True(t, tmt.Changed)
	assert.Contains(t, tmt.Card, "2020")
	assert.Contains(t, tmt.New, "2026")
	jabatan := lang.T("kiosk.renewal.field.employment.jabatan")
	assert.Equal(t, compareRow{jabatan, "Kepala Bidang Pelayanan Kesehatan", "Kepala Bidang Pelayanan Kesehatan", false}, row(t, rows, jabatan), "unchanged, not marked")
	member := lang.T("kiosk.renewal.field.family.member")
	assert.Equal(t, compareRow{member + " 6", absent, child, true}, row(t, rows, member+" 6"), "the new child, marked; not on the card")
	assert.False(t, row(t, rows, member+" 1").Changed, "the spouse is unchanged")
	changed := 0
	for _, r := range rows {
		if r.Changed {
			changed++
			assert.NotEqual(t, r.Card, r.New, r.Label)
		} else {
			assert.Equal(t, r.Card, r.New, r.Label)
		}
	}
	assert.Equal(t, 3, changed, "pangkat, its TMT and the new child")
}

// changesFirst checks that the kiosk lists the changed rows first.
func changesFirst(t *testing.T, rows []compareRow) {
	t.Helper()
	for i := 1; i < len(rows); i++ {
		assert.False(t, rows[i].Changed && !rows[i-1].Changed, "row %d (%s) is changed and follows an unchanged one", i, rows[i].Label)
	}
}

// choicesInView checks, in both orientations, that the comparison's
// choices are on the screen without scrolling (the list scrolls under
// them) and that no cell's text runs out of its cell.
func (k *kioskTab) choicesInView() {
	k.t.Helper()
	for _, o := range kioskScreens {
		k.b.Viewport(o.width, o.height, shotScale)
		var bad []string
		k.b.Eval(`(() => { const bad = [];
			for (const id of ["renewal-apply", "renewal-decline"]) { const r = document.getElementById(id).getBoundingClientRect();
				if (r.top < 0 || r.bottom > innerHeight || r.height === 0) bad.push(id + " out of view: " + JSON.stringify(r)); }
			const footer = document.querySelector("footer").getBoundingClientRect();
			if (document.getElementById("renewal-apply").getBoundingClientRect().bottom > footer.top) bad.push("under the footer");
			for (const c of document.querySelectorAll("#renewal .compare th, #renewal .compare td"))
				if (c.scrollWidth > c.clientWidth + 1) bad.push(JSON.stringify(c.textContent) + " overflows its cell");
			return bad; })()`, &bad)
		assert.Empty(k.t, bad, o.name)
	}
	k.b.Viewport(kioskScreens[0].width, kioskScreens[0].height, shotScale)
}

// renewalAnswers are the agent's answers the kiosk page fetched so far,
// the renewal's among them.
func (k *kioskTab) renewalAnswers() []string {
	k.t.Helper()
	var urls []string
	k.b.Eval(`performance.getEntriesByType("resource").map((e) => e.name).filter((u) => u.includes("/v1/kiosk/") || u.includes("/v1/readers") || u.includes("/v1/renewal"))`, &urls)
	return urls
}

// toOffer waits for the renewal banner on the holder's data (in lang) and
// opens the comparison; shot names the banner's screenshot, if any.
func (k *kioskTab) toOffer(lang i18n.Lang, shot string) {
	k.t.Helper()
	k.screen("result")
	k.b.Wait(`!document.getElementById("renewal-available").hidden`, 20*time.Second)
	assert.Equal(k.t, lang.T("kiosk.renewal.title"), k.text("#renewal-available strong"))
	if shot != "" {
		k.check(shot)
	}
	k.b.Click("#renewal-open")
	k.screen("renewal")
	k.b.Wait(`!document.getElementById("renewal-offer").hidden && document.querySelectorAll("#renewal-fields tr").length > 0`, 5*time.Second)
}

// The kiosk's renewal screens in Chromium through the whole terminal (the
// card lab, the agent, the back office with its renewal issuer): Budi's
// card with budiPromotionCSV staged is offered it after the fingerprint; the
// comparison marks the changes; "Nanti saja" writes nothing; a card pulled
// while it is written shows the interrupted screen, and on its
// reinsertion the offer comes again saying so; "Perbarui kartu" shows the
// progress, then the code the back office verifies; the card then holds
// the new data. Every screen in both orientations for the kiosk-grade
// layout (and its screenshot with -kiosk-screenshots), once in English;
// nothing of the renewal stays in the page or the browser after a session.
func TestKioskRenewalPage(t *testing.T) {
	r := renewalRig(t)
	b := browsertest.Start(t, browsertest.WindowSize(1080, 1920))
	b.Viewport(kioskScreens[0].width, kioskScreens[0].height, shotScale)
	kt := &kioskTab{t: t, r: r, b: b}
	kt.open()
	kt.waiting()
	secrets := []string{"Budi", "197208172000031002", "IV/d", "Pembina Utama Madya", "Bayu Aji Santoso"}

	t.Run("decline", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.toOffer(i18n.Indonesian, "renewal-available")
		assert.Equal(t, "Pembaruan data tersedia", k.text("#renewal-title"))
		assert.Equal(t, "Data di kartu", k.text("#renewal-card"))
		assert.Equal(t, "Data terbaru BKN", k.text("#renewal-new"))
		assert.Equal(t, "Perbarui kartu", k.text("#renewal-apply"))
		assert.Equal(t, "Nanti saja", k.text("#renewal-decline"))
		var hidden bool
		k.b.Eval(`document.getElementById("renewal-was-interrupted").hidden`, &hidden)
		assert.True(t, hidden, "no earlier renewal was interrupted")
		compareShown(t, kioskRows(k.b), i18n.Indonesian, newChild, i18n.Indonesian.T("kiosk.not-held"))
		changesFirst(t, kioskRows(k.b))
		// the changed values are told to a screen reader as changed
		var label string
		k.b.Eval(`document.querySelector("#renewal-fields tr.changed td:last-child").getAttribute("aria-label")`, &label)
		assert.Equal(t, "Pembina Utama Madya IV/d (berubah)", label)
		k.choicesInView()
		k.check("renewal-compare")

		k.b.Click("#renewal-decline")
		k.screen("result")
		k.b.Wait(`document.getElementById("renewal-banner").hidden`, 5*time.Second)
		assert.Contains(t, k.text("#panel-profile"), "IV/c", "the holder's data as the card holds it")
		j, err := r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "nothing written: no journal entry")
		assert.Zero(t, r.renewalRecords(t), "no renewal record")
		var v api.RenewalView
		status, e := r.call("GET", api.PathRenewal+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &v)
		require.Equal(t, http.StatusOK, status, "%+v", e)
		assert.Equal(t, api.RenewalNone, v.State)
		assert.Equal(t, "declined", v.Reason)

		answers := k.renewalAnswers()
		k.pull()
		k.screen("attract")
		k.waiting()
		k.clean(answers, nil, secrets...)
	})

	// English once: the comparison's words and the agent's labels and
	// values.
	t.Run("english", func(t *testing.T) {
		k := kt.in(t)
		k.b.Click("#lang-en")
		k.b.Wait(`document.body.dataset.session === "en"`, 5*time.Second)
		k.waiting()
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.present("kpe-budi.json")
		k.toOffer(i18n.English, "")
		assert.Equal(t, "Data update available", k.text("#renewal-title"))
		assert.Equal(t, "Data on the card", k.text("#renewal-card"))
		assert.Equal(t, "Latest BKN data", k.text("#renewal-new"))
		assert.Equal(t, "Update card", k.text("#renewal-apply"))
		assert.Equal(t, "Not now", k.text("#renewal-decline"))
		compareShown(t, kioskRows(k.b), i18n.English, "Bayu Aji Santoso (Child, 3 May 2026, Dependant)", i18n.English.T("kiosk.not-held"))
		k.choicesInView()
		k.check("renewal-compare-en")
		k.b.Click("#renewal-decline")
		k.screen("result")
		k.pull()
		k.screen("attract")
		k.b.Wait(`document.documentElement.lang === "id"`, 5*time.Second)
		k.waiting()
	})

	// The card pulled while it is written (torn before its COMMIT): the
	// interrupted screen; the card back in, a fresh page offers to start,
	// and after the fingerprint the offer comes again, saying that the
	// last one was interrupted and the card holds its old data. Then the
	// holder updates the card: the progress screen, then the code, which
	// the back office verifies once the record is sent.
	var code string
	// the lab keeps a card's data only while it is in (kpeapp does not
	// persist it): from here the card stays in until the test's end
	keep := func(t *testing.T) {
		pcsctest.Insert(t, r.lab, 0, "lab/cards/kpe-budi.json")
	}
	t.Cleanup(func() {
		_ = r.lab.Remove(0)
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})
	t.Run("interrupted-then-applied", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		keep(t)
		k.toOffer(i18n.Indonesian, "")
		// the 6th command of the write: past the update session's
		// authentication and BEGIN, before COMMIT
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{RemoveAtAPDU: 6}))
		k.b.Click("#renewal-apply")
		k.b.Wait(`!document.getElementById("renewal-interrupted").hidden`, 60*time.Second)
		assert.Equal(t, "Pembaruan terputus", k.text("#renewal-interrupted h2"))
		assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.reason.card-removed"), k.text("#renewal-interrupted-message"))
		var finish bool
		k.b.Eval(`!document.getElementById("finish").hidden`, &finish)
		assert.True(t, finish, "Selesai ends the session")
		k.check("renewal-interrupted")
		j, err := r.ob.Journal(budiSerial)
		require.NoError(t, err)
		require.NotNil(t, j, "the journal keeps the interrupted renewal")
		assert.Zero(t, r.renewalRecords(t))

		// the card comes back: the page starts afresh with it
		require.NoError(t, r.lab.ClearFault(0))
		k.b.Eval(`window.before = true`, nil)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		keep(t)
		k.b.Wait(`window.before === undefined && document.body.dataset.screen === "attract" && !document.getElementById("start").hidden`, 30*time.Second)
		k.b.Click("#start")
		k.toOffer(i18n.Indonesian, "")
		k.b.Wait(`!document.getElementById("renewal-was-interrupted").hidden`, 5*time.Second)
		assert.Equal(t, i18n.Indonesian.T("kiosk.renewal.was-interrupted"), k.text("#renewal-was-interrupted"))
		compareShown(t, kioskRows(k.b), i18n.Indonesian, newChild, i18n.Indonesian.T("kiosk.not-held"))
		j, err = r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "the journal entry is cleared once the card is seen with its old data")

		// the write, slowed so that its screen can be looked at
		require.NoError(t, r.lab.SetFault(0, cardsim.Fault{Delay: 1500 * time.Millisecond, DelayCount: 6}))
		k.b.Click("#renewal-apply")
		k.b.Wait(`!document.getElementById("renewal-writing").hidden`, 5*time.Second)
		assert.Equal(t, "Kartu sedang diperbarui", k.text("#renewal-writing h2"))
		assert.Equal(t, "Jangan cabut kartu Anda sampai selesai.", k.text("#renewal-writing .warning"))
		assert.Contains(t, strings.ToLower(k.text("#renewal-writing .warning")), "jangan cabut kartu")
		var buttons []string
		k.b.Eval(`[...document.querySelectorAll("button")].filter((b) => b.getClientRects().length > 0 && !b.closest(".lang")).map((b) => b.id)`, &buttons)
		assert.Empty(t, buttons, "nothing to press while the card is written")
		k.check("renewal-progress")
		k.b.Wait(`!document.getElementById("renewal-done").hidden`, 60*time.Second)
		require.NoError(t, r.lab.ClearFault(0))
		assert.Equal(t, "Kartu Anda sudah diperbarui", k.text("#renewal-done h2"))
		code = k.text("#renewal-code")
		assert.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$`, code)
		k.check("renewal-done")
		assert.Equal(t, 1, r.renewalRecords(t))
		j, err = r.ob.Journal(budiSerial)
		require.NoError(t, err)
		assert.Nil(t, j, "the journal entry went with the record")
		r.verifyUploaded(t, code)

		answers := k.renewalAnswers()
		k.b.Click("#finish")
		k.screen("attract")
		k.b.Wait(`!document.getElementById("start").hidden`, 10*time.Second)
		k.clean(answers, nil, append(secrets, code)...)
	})
	require.NotEmpty(t, code)

	// The next session with the card: its profile shows the new data, and
	// no renewal is offered or recorded again.
	t.Run("profile-after", func(t *testing.T) {
		k := kt.in(t)
		require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
		k.b.Click("#start")
		k.screen("result")
		k.b.Wait(`document.querySelector("#panel-profile .photo")?.complete === true`, 10*time.Second)
		profile := k.text("#panel-profile")
		assert.Contains(t, profile, "Pembina Utama Madya")
		assert.Contains(t, profile, "IV/d")
		assert.NotContains(t, profile, "IV/c")
		assert.Contains(t, profile, "1 Oktober 2026", "the new TMT pangkat")
		assert.Contains(t, profile, "Bayu Aji Santoso")
		var family int
		k.b.Eval(`document.querySelectorAll("#panel-profile table.family tbody tr").length`, &family)
		assert.Equal(t, 6, family)
		// the back office has the renewal on record: nothing offered
		require.Eventually(t, func() bool {
			var v api.RenewalView
			status, _ := r.call("GET", api.PathRenewal+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, &v)
			return status == http.StatusOK && v.State == api.RenewalNone && v.Reason == "none"
		}, 15*time.Second, 100*time.Millisecond)
		// the page learns it from an event and a fetch of its own
		k.b.Wait(`document.getElementById("renewal-banner").hidden`, 15*time.Second)
		var screen string
		k.b.Eval(`document.body.dataset.screen`, &screen)
		assert.Equal(t, "result", screen, "no renewal screen")
		assert.Equal(t, 1, r.renewalRecords(t), "the renewal is recorded once")
		answers := k.renewalAnswers()
		k.pull()
		k.screen("attract")
		k.waiting()
		k.clean(answers, nil, append(secrets, code)...)
	})
}

// The counter screen's renewal in Chromium through the whole terminal:
// the clerk authenticates Budi's card for Taspen; with an impostor's
// finger nothing about a renewal is offered; with the holder's
// fingerprint the clerk checks for a data update, sees the comparison
// (the changes marked) and applies it; the code is the renewal record's,
// which the back office verifies.
func TestLoketRenewalPage(t *testing.T) {
	r := renewalRig(t)
	b := browsertest.Start(t, browsertest.WindowSize(1366, 900))
	b.Navigate(r.loketLink(t))
	b.Wait(`document.getElementById("link").dataset.state === "open"`, 10*time.Second)
	b.Click("#lang-id")
	b.SetValue("#operator", "clerk-07")
	b.Click("#shift-start")
	b.Wait(`!document.getElementById("work").hidden`, 5*time.Second)
	b.Click(`input[name="service"][value="taspen"]`)
	pcsctest.Insert(t, r.lab, 0, "lab/cards/kpe-budi.json")
	t.Cleanup(func() {
		_ = r.lab.Remove(0)
		pcsctest.WaitCard(t, pcsctest.Slot0, false, 15*time.Second)
	})
	r.waitReader(t, pcsctest.Slot0, func(rd api.Reader) bool { return rd.CardPresent && !rd.Busy })

	// the fingerprint does not match: no renewal
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerImpostor))
	b.Click("#start")
	b.Wait(`document.getElementById("start").disabled === false && document.getElementById("message").dataset.kind === "error"`, 30*time.Second)
	var hidden bool
	b.Eval(`document.getElementById("renewal").hidden`, &hidden)
	assert.True(t, hidden, "no renewal without the holder's fingerprint")
	status, e := r.call("GET", api.PathRenewal+"?reader="+url.QueryEscape(pcsctest.Slot0), nil, nil)
	assert.Equal(t, http.StatusNotFound, status, "%+v", e)
	assert.Equal(t, "not-available", e.Code)

	// the holder's fingerprint: the clerk may check
	require.NoError(t, r.lab.PlaceFinger(0, cardsim.FingerGenuine))
	b.Click("#start")
	b.Wait(`/^[0-9A-Z]{4}-/.test(document.getElementById("code").textContent)`, 30*time.Second)
	authCode := b.Text("#code")
	b.Wait(`!document.getElementById("renewal").hidden && !document.getElementById("renewal-check").hidden`, 5*time.Second)
	assert.Equal(t, i18n.Indonesian.T("loket.renewal.title"), b.Text("#renewal-title"))
	assert.Zero(t, r.renewalRecords(t), "nothing asked or written before the clerk checks")
	b.Click("#renewal-check")
	b.Wait(`!document.getElementById("renewal-compare").hidden`, 20*time.Second)
	assert.Equal(t, i18n.Indonesian.T("loket.renewal.available"), b.Text("#renewal-compare > p"))
	assert.Equal(t, "Data di kartu", b.Text("#renewal-card h3"))
	assert.Equal(t, "Data terbaru BKN", b.Text("#renewal-new h3"))
	compareShown(t, loketRows(b), i18n.Indonesian, newChild, "—")
	var title string
	b.Eval(`document.querySelector("#renewal-new-fields dd.changed").title`, &title)
	assert.Equal(t, i18n.Indonesian.T("loket.renewal.changed"), title)
	assert.Equal(t, "Perbarui kartu", b.Text("#renewal-apply"))
	assert.Equal(t, "Nanti saja", b.Text("#renewal-decline"))

	b.Click("#renewal-apply")
	b.Wait(`!document.getElementById("renewal-done").hidden`, 30*time.Second)
	code := b.Text("#renewal-code")
	assert.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{3}[0-9A-Z*~$=]$`, code)
	assert.NotEqual(t, authCode, code, "the renewal's own record")
	b.Eval(`document.getElementById("renewal-compare").hidden && document.getElementById("renewal-check").hidden`, &hidden)
	assert.True(t, hidden, "nothing more to do")
	assert.Equal(t, 1, r.renewalRecords(t))
	last, err := r.ob.Last()
	require.NoError(t, err)
	assert.Equal(t, record.ServiceRenewal, last.Service)
	assert.Equal(t, "clerk-07", last.OperatorID, "the clerk who applied it")
	r.verifyUploaded(t, code)
}
