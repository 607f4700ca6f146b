package i18n

// kiosk holds the words of the self-service kiosk's page (kiosk.*), read
// by the card holder. The page (agent/api/kiosk) takes the entries under
// "kiosk." as its table, in both languages; the keys after that prefix
// are the page's words (data-t in index.html, t() in kiosk.js). What the
// agent itself says to the holder (errors, prompts, outcomes) is
// holder.* in frontline.go. A text's %d is filled by the page.
var kiosk = table{
	"kiosk.title":      {"Anjungan KPE", "KPE Kiosk"},
	"kiosk.lang.label": {"Bahasa", "Language"},
	"kiosk.lang.id":    {"ID", "ID"},
	"kiosk.lang.en":    {"EN", "EN"},

	// the attract screen and its status lights
	"kiosk.attract.title":       {"Masukkan KPE Anda", "Insert your KPE"},
	"kiosk.attract.cards":       {"KPE, KPE Tambahan, atau KTP-el. Masukkan kartu dengan chip menghadap ke atas.", "KPE, KPE Tambahan or KTP-el. Insert the card with its chip facing up."},
	"kiosk.attract.card-in":     {"Sebuah kartu sudah ada di pembaca. Sentuh Mulai untuk memakainya, atau ambil kartu tersebut.", "A card is in the reader already. Touch Start to use it, or take the card out."},
	"kiosk.attract.start":       {"Mulai", "Start"},
	"kiosk.light.title":         {"Status anjungan", "Kiosk status"},
	"kiosk.light.agent":         {"Anjungan", "Kiosk"},
	"kiosk.light.reader":        {"Pembaca kartu", "Card reader"},
	"kiosk.light.sam":           {"Modul keamanan (SAM)", "Security module (SAM)"},
	"kiosk.light.backoffice":    {"Kantor pusat", "Back office"},
	"kiosk.light.unknown":       {"Memeriksa…", "Checking…"},
	"kiosk.light.running":       {"Berjalan", "Running"},
	"kiosk.light.down":          {"Tidak menjawab", "Not answering"},
	"kiosk.light.ready":         {"Siap", "Ready"},
	"kiosk.light.not-ready":     {"Tidak siap", "Not ready"},
	"kiosk.light.online":        {"Terhubung", "Online"},
	"kiosk.light.online-queued": {"Terhubung; %d transaksi sedang dikirim", "Online; %d transactions being sent"},
	"kiosk.light.offline":       {"Luring; %d transaksi menunggu dikirim", "Offline; %d transactions waiting to be sent"},
	"kiosk.light.disabled":      {"Tidak dipakai", "Not used"},

	// out of service
	"kiosk.oos.title": {"Anjungan sedang tidak dapat melayani", "The kiosk is out of service"},
	"kiosk.oos.code":  {"Kode untuk petugas teknis:", "Code for the technician:"},

	// the progress of a session
	"kiosk.progress.title":     {"Mohon tunggu, kartu Anda sedang diperiksa", "Please wait, your card is being checked"},
	"kiosk.progress.reading":   {"Kartu Anda sedang dibaca. Jangan cabut kartu Anda.", "Your card is being read. Do not take it out."},
	"kiosk.progress.recording": {"Sidik jari cocok. Transaksi Anda sedang dicatat.", "Fingerprint matched. Your transaction is being recorded."},
	"kiosk.step.identified":    {"Kartu dikenali", "Card recognised"},
	"kiosk.step.authenticated": {"Kartu asli", "Card genuine"},
	"kiosk.step.fingerprint":   {"Letakkan jari Anda pada sensor", "Place your finger on the sensor"},
	"kiosk.step.verified":      {"Sidik jari cocok", "Fingerprint matched"},
	"kiosk.step.tries":         {"(sisa %d kesempatan)", "(%d tries left)"},
	"kiosk.kind.kpe":           {"KPE", "KPE"},
	"kiosk.kind.kpe-tambahan":  {"KPE Tambahan", "KPE Tambahan"},
	"kiosk.kind.ktpel":         {"KTP-el", "KTP-el"},
	"kiosk.kind.unknown":       {"kartu tidak dikenal", "unknown card"},

	// the last fingerprint try, asked within the session
	"kiosk.prompt.title":    {"Kesempatan terakhir", "Last try"},
	"kiosk.prompt.continue": {"Lanjutkan", "Continue"},
	"kiosk.prompt.cancel":   {"Batal", "Cancel"},

	// a session that failed
	"kiosk.failure.title":     {"Mohon maaf", "We are sorry"},
	"kiosk.failure.take-card": {"Silakan ambil kartu Anda.", "Please take your card."},
	"kiosk.failure.code":      {"Kode:", "Code:"},

	// the holder's own data
	"kiosk.result.title":     {"Data Anda", "Your data"},
	"kiosk.tab.profile":      {"Profil saya", "My profile"},
	"kiosk.tab.services":     {"Layanan", "Services"},
	"kiosk.tab.tambahan":     {"KPE Tambahan", "KPE Tambahan"},
	"kiosk.tab.ktpel":        {"KTP-el", "KTP-el"},
	"kiosk.tab.receipt":      {"Tanda terima", "Receipt"},
	"kiosk.verified":         {"Data terverifikasi dari chip KPE", "Data verified from the KPE chip"},
	"kiosk.not-held":         {"Tidak tersimpan pada kartu", "Not held on the card"},
	"kiosk.yes":              {"Ya", "Yes"},
	"kiosk.no":               {"Tidak", "No"},
	"kiosk.months":           {"Januari,Februari,Maret,April,Mei,Juni,Juli,Agustus,September,Oktober,November,Desember", "January,February,March,April,May,June,July,August,September,October,November,December"},
	"kiosk.photo.alt":        {"Foto dari kartu", "Photo from the card"},
	"kiosk.profile.identity": {"Identitas", "Identity"},
	"kiosk.field.name":       {"Nama", "Name"},
	"kiosk.field.nip":        {"NIP", "NIP"},
	"kiosk.field.birth":      {"Tempat, tanggal lahir", "Place and date of birth"},
	"kiosk.field.gender":     {"Jenis kelamin", "Sex"},
	"kiosk.gender.male":      {"Laki-laki", "Male"},
	"kiosk.gender.female":    {"Perempuan", "Female"},
	"kiosk.field.address":    {"Alamat", "Address"},

	"kiosk.profile.employment":    {"Kepegawaian", "Employment"},
	"kiosk.profile.no-employment": {"Kartu tidak memuat data kepegawaian.", "The card holds no employment data."},
	"kiosk.field.status":          {"Status kepegawaian", "Employment status"},
	"kiosk.field.pangkat":         {"Pangkat, golongan/ruang", "Rank, grade (golongan/ruang)"},
	"kiosk.field.tmt-pangkat":     {"TMT pangkat", "Rank effective from (TMT)"},
	"kiosk.field.jabatan":         {"Jabatan", "Position"},
	"kiosk.field.tmt-jabatan":     {"TMT jabatan", "Position effective from (TMT)"},
	"kiosk.field.parent-agency":   {"Instansi induk", "Parent agency"},
	"kiosk.field.working-agency":  {"Instansi kerja", "Working agency"},
	"kiosk.field.work-unit":       {"Unit kerja", "Work unit"},
	"kiosk.field.work-location":   {"Lokasi kerja", "Work location"},

	"kiosk.profile.family":    {"Keluarga", "Family"},
	"kiosk.family.none":       {"Kartu tidak memuat data keluarga.", "The card holds no family data."},
	"kiosk.family.relation":   {"Hubungan", "Relation"},
	"kiosk.family.name":       {"Nama", "Name"},
	"kiosk.family.birth-date": {"Tanggal lahir", "Date of birth"},
	"kiosk.family.dependant":  {"Tanggungan", "Dependant"},
	"kiosk.family.tambahan":   {"KPE Tambahan", "KPE Tambahan"},
	"kiosk.role.spouse":       {"Suami/istri", "Spouse"},
	"kiosk.role.child":        {"Anak", "Child"},

	"kiosk.services.askes":           {"ASKES / BPJS Kesehatan", "ASKES / BPJS Kesehatan (health insurance)"},
	"kiosk.services.taspen":          {"Taspen (tabungan hari tua dan pensiun)", "Taspen (old-age savings and pension)"},
	"kiosk.services.taspen-benefit":  {"Besar tunjangan hari tua tidak tersimpan pada kartu. Tanyakan kepada kantor Taspen.", "The amount of the old-age benefit is not held on the card. Ask the Taspen office."},
	"kiosk.services.taperum":         {"Taperum (Bapertarum-PNS)", "Taperum (Bapertarum-PNS housing savings)"},
	"kiosk.services.taperum-benefit": {"Besar bantuan Taperum tidak tersimpan pada kartu. Tanyakan kepada Bapertarum-PNS.", "The amount of the Taperum support is not held on the card. Ask Bapertarum-PNS."},
	"kiosk.services.note":            {"Anjungan hanya menampilkan apa yang tersimpan pada kartu Anda.", "The kiosk shows only what your card holds."},
	"kiosk.field.number":             {"Nomor", "Number"},
	"kiosk.field.class":              {"Kelas", "Class"},
	"kiosk.field.taperum-status":     {"Status", "Status"},
	"kiosk.field.bank":               {"Bank", "Bank"},
	"kiosk.field.account":            {"Nomor rekening", "Account number"},

	"kiosk.tambahan.own":      {"Data Anda", "Your data"},
	"kiosk.tambahan.link":     {"Pegawai negeri sipil yang terkait", "The civil servant it belongs to"},
	"kiosk.tambahan.relation": {"Hubungan Anda", "Your relation"},
	"kiosk.tambahan.nip":      {"NIP pegawai", "Civil servant's NIP"},

	"kiosk.ktpel.confirmed": {"Identitas Anda terkonfirmasi dengan KTP-el.", "Your identity is confirmed with your KTP-el."},
	"kiosk.ktpel.rules":     {"Sesuai ketentuan Dukcapil, anjungan tidak menyimpan dan tidak menampilkan data kependudukan dari KTP-el Anda.", "Under the Dukcapil rules, the kiosk neither stores nor shows the population data of your KTP-el."},

	// the receipt
	"kiosk.receipt.title":         {"Tanda terima", "Receipt"},
	"kiosk.receipt.done":          {"Autentikasi berhasil dan tercatat.", "Authentication succeeded and is recorded."},
	"kiosk.receipt.code":          {"Kode autentikasi", "Authentication code"},
	"kiosk.receipt.qr-alt":        {"Kode QR untuk memeriksa kode autentikasi ini", "QR code to check this authentication code"},
	"kiosk.receipt.scan":          {"Pindai kode QR untuk memeriksa kode ini di kantor pusat.", "Scan the QR code to check this code at the back office."},
	"kiosk.receipt.service":       {"Layanan", "Service"},
	"kiosk.receipt.service-kiosk": {"Anjungan KPE", "KPE Kiosk"},
	"kiosk.receipt.time":          {"Waktu", "Time"},
	"kiosk.receipt.keep":          {"Simpan kode ini sebagai bukti transaksi Anda.", "Keep this code as proof of your transaction."},

	// the actions and the idle warning
	"kiosk.action.cancel": {"Batal", "Cancel"},
	"kiosk.action.print":  {"Cetak", "Print"},
	"kiosk.action.finish": {"Selesai", "Finish"},
	"kiosk.idle.warning":  {"Masih di sini? Sesi Anda akan berakhir dan data Anda dihapus dari layar.", "Still there? Your session will end and your data will be cleared from the screen."},
	"kiosk.idle.count":    {"Sisa waktu: %d detik", "Time left: %d seconds"},
	"kiosk.idle.continue": {"Lanjutkan", "Continue"},
}
