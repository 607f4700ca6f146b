package i18n

// loket holds the words of the counter screen (/loket/, agent/api/loket),
// for the clerk at a counter whose own system has no integration. The page
// takes the entries under "loket." as its table, in both languages (its
// ID · EN switch needs no round trip); the keys after that prefix are the
// page's words (data-t, and the tables of its script).
var loket = table{
	"loket.title":      {"Layar Loket KPE", "KPE Counter Screen"},
	"loket.lang-label": {"Bahasa", "Language"},
	"loket.terminal":   {"Terminal", "Terminal"},

	// The event stream's connection light.
	"loket.link.connecting": {"Menghubungkan ke agen…", "Connecting to the agent…"},
	"loket.link.open":       {"Terhubung ke agen", "Connected to the agent"},
	"loket.link.retrying":   {"Koneksi ke agen terputus; mencoba lagi…", "Connection to the agent lost; retrying…"},
	"loket.link.closed":     {"Tidak terhubung ke agen", "Not connected to the agent"},

	// Logging in with a one-time link (kpectl loket).
	"loket.login.needed":  {"Layar loket belum dibuka di peramban ini, atau sesinya sudah berakhir (12 jam, atau agen dimulai ulang).", "The counter screen is not open in this browser, or its session has ended (12 hours, or the agent restarted)."},
	"loket.login.expired": {"Tautan masuk ini tidak berlaku lagi: sudah dipakai, atau lebih dari 60 detik.", "This login link is no longer valid: it was used already, or it is older than 60 seconds."},
	"loket.login.how":     {"Di PC ini, jalankan kpectl loket --open (atau kpectl loket lalu buka tautannya). Tautan berlaku 60 detik dan hanya sekali pakai.", "On this PC, run kpectl loket --open (or kpectl loket and open its link). A link is valid for 60 seconds, once."},

	// The shift: the clerk's operator ID, kept in the page's memory only.
	"loket.shift.title":   {"Petugas", "Clerk"},
	"loket.shift.label":   {"ID petugas (operator)", "Clerk ID (operator)"},
	"loket.shift.start":   {"Mulai shift", "Start the shift"},
	"loket.shift.change":  {"Ganti petugas", "Change clerk"},
	"loket.shift.invalid": {"ID petugas: 1 sampai 64 huruf, angka, atau . _ @ -", "Clerk ID: 1 to 64 letters, digits or . _ @ -"},
	"loket.shift.memory":  {"ID petugas hanya disimpan di halaman ini; setelah halaman dimuat ulang, masukkan lagi.", "The clerk ID is kept by this page only; after a reload, enter it again."},

	// The authentication.
	"loket.service.label":      {"Layanan", "Service"},
	"loket.service.askes":      {"ASKES / BPJS Kesehatan", "ASKES / BPJS Kesehatan"},
	"loket.service.taspen":     {"Taspen", "Taspen"},
	"loket.service.bapertarum": {"Bapertarum (Taperum)", "Bapertarum (Taperum)"},
	"loket.service.kiosk":      {"Anjungan (kiosk)", "Kiosk"},
	"loket.reader.label":       {"Pembaca kartu", "Card reader"},
	"loket.reader.none":        {"Tidak ada pembaca kartu.", "No card reader."},
	"loket.start":              {"Mulai autentikasi", "Start the authentication"},
	"loket.cancel":             {"Batalkan", "Cancel"},
	"loket.waiting-card":       {"Masukkan kartu pemegang ke pembaca (paling lama 60 detik)…", "Insert the holder's card into the reader (at most 60 seconds)…"},
	"loket.progress":           {"Langkah", "Steps"},
	"loket.step.detected":      {"Kartu terdeteksi", "Card detected"},
	"loket.step.identified":    {"Kartu dikenali", "Card identified"},
	"loket.step.authenticated": {"Kartu dan data asli", "Card and data genuine"},
	"loket.step.fingerprint":   {"Sidik jari", "Fingerprint"},
	"loket.step.prompt":        {"Menunggu keputusan petugas", "Waiting for the clerk's decision"},
	"loket.step.verified":      {"Sidik jari cocok", "Fingerprint matched"},
	"loket.step.recorded":      {"Tercatat", "Recorded"},
	"loket.step.removed":       {"Kartu dicabut", "Card removed"},
	"loket.step.failed":        {"Gagal", "Failed"},
	"loket.prompt.continue":    {"Pakai kesempatan terakhir", "Use the last try"},
	"loket.prompt.cancel":      {"Batalkan transaksi", "Cancel the transaction"},
	"loket.result.code":        {"Kode autentikasi", "Authentication code"},

	// The ASKES / BPJS Kesehatan form, filled from the card, printable on A4.
	"loket.form.title":         {"Formulir ASKES / BPJS Kesehatan", "ASKES / BPJS Kesehatan form"},
	"loket.form.nama":          {"Nama", "Name"},
	"loket.form.nip":           {"NIP", "NIP"},
	"loket.form.nip-pegawai":   {"NIP pegawai", "Civil servant's NIP"},
	"loket.form.hubungan":      {"Hubungan", "Relation"},
	"loket.form.tempat-lahir":  {"Tempat lahir", "Place of birth"},
	"loket.form.tanggal-lahir": {"Tanggal lahir", "Date of birth"},
	"loket.form.jenis-kelamin": {"Jenis kelamin", "Sex"},
	"loket.form.alamat":        {"Alamat", "Address"},
	"loket.form.bpjs":          {"No. ASKES / BPJS", "ASKES / BPJS number"},
	"loket.form.instansi":      {"Instansi", "Agency"},
	"loket.form.golongan":      {"Golongan / ruang", "Golongan / ruang"},
	"loket.form.verified":      {"Data diambil dari chip KPE dan terverifikasi.", "Data taken from the KPE chip and verified."},
	"loket.form.not-verified":  {"PERHATIAN: data kartu TIDAK terverifikasi.", "ATTENTION: the card's data is NOT verified."},
	"loket.form.code":          {"Kode autentikasi", "Authentication code"},
	"loket.form.time":          {"Waktu", "Time"},
	"loket.form.operator":      {"Petugas", "Clerk"},
	"loket.form.qr":            {"Pindai untuk memeriksa kode di back office.", "Scan to check the code at the back office."},
	"loket.form.print":         {"Cetak formulir", "Print the form"},
	"loket.form.unavailable":   {"Formulir tidak dapat diisi dari kartu ini.", "The form cannot be filled from this card."},

	// Today's codes at this terminal.
	"loket.codes.title":          {"Kode hari ini di terminal ini", "Today's codes at this terminal"},
	"loket.codes.code":           {"Kode", "Code"},
	"loket.codes.service":        {"Layanan", "Service"},
	"loket.codes.time":           {"Waktu", "Time"},
	"loket.codes.state":          {"Status", "State"},
	"loket.codes.none":           {"Belum ada kode hari ini.", "No codes yet today."},
	"loket.codes.refresh":        {"Muat ulang", "Refresh"},
	"loket.codes.truncated":      {"Hanya kode terbaru yang ditampilkan.", "Only the latest codes are shown."},
	"loket.codes.state.queued":   {"menunggu dikirim", "queued"},
	"loket.codes.state.synced":   {"terkirim", "synced"},
	"loket.codes.state.rejected": {"ditolak back office", "rejected by the back office"},
}
