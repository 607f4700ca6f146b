package i18n

// backoffice holds the back office's pages for its staff (staff.*). The
// code verification page takes the entries under "staff.verify." as its
// table; the keys after that prefix are the page's words (data-t) and the
// reasons a code is not valid (wire.Verdict.Reason).
var backoffice = table{
	"staff.verify.title":            {"Verifikasi Kode Autentikasi KPE", "KPE Authentication Code Verification"},
	"staff.verify.intro":            {"Ketik kode yang tercetak pada formulir (16 karakter). Huruf besar/kecil dan tanda hubung tidak berpengaruh.", "Type the code printed on the form (16 characters). Case and hyphens do not matter."},
	"staff.verify.label":            {"Kode autentikasi", "Authentication code"},
	"staff.verify.button":           {"Periksa", "Check"},
	"staff.verify.valid":            {"Kode SAH", "Code VALID"},
	"staff.verify.invalid":          {"Kode TIDAK SAH", "Code NOT VALID"},
	"staff.verify.check-symbol":     {"Karakter pemeriksa tidak cocok: kemungkinan salah ketik. Periksa kembali setiap karakter.", "The check character does not match: probably a typing mistake. Check every character again."},
	"staff.verify.length":           {"Kode harus 16 karakter (tanpa tanda hubung).", "A code has 16 characters (hyphens aside)."},
	"staff.verify.symbol":           {"Ada karakter yang bukan bagian dari kode.", "A character is not part of the code alphabet."},
	"staff.verify.unknown":          {"Kode ini tidak dikenal oleh back office: belum tersinkron dari terminal, atau bukan kode yang sah.", "The back office does not know this code: not yet synced from the terminal, or not a genuine code."},
	"staff.verify.error":            {"Back office tidak dapat menjawab. Coba lagi.", "The back office cannot answer. Try again."},
	"staff.verify.rate-limited":     {"Terlalu banyak pemeriksaan dalam waktu singkat. Tunggu sebentar, lalu coba lagi.", "Too many checks in a short time. Wait a moment, then try again."},
	"staff.verify.service":          {"Layanan", "Service"},
	"staff.verify.time":             {"Waktu", "Time"},
	"staff.verify.clock":            {"Kualitas jam", "Clock quality"},
	"staff.verify.terminal":         {"Terminal", "Terminal"},
	"staff.verify.site":             {"Lokasi", "Site"},
	"staff.verify.card":             {"Kartu", "Card"},
	"staff.verify.card_auth":        {"Keaslian kartu", "Card authenticity"},
	"staff.verify.issuer_signature": {"Tanda tangan penerbit", "Issuer signature"},
	"staff.verify.identifiers":      {"Kesesuaian identitas", "Identifier consistency"},
	"staff.verify.fingerprint":      {"Sidik jari", "Fingerprint"},
	"staff.verify.signer":           {"Penanda tangan", "Signer"},
	"staff.verify.sam":              {"SAM / penghitung", "SAM / counter"},
	"staff.verify.received":         {"Diterima", "Received"},
	"staff.verify.flags":            {"Catatan", "Notes"},
	// The staff sign-in (sync/backoffice/signin.go). A failure never
	// tells whether the name exists or the account is locked.
	"staff.signin.title":        {"Masuk Back Office KPE", "KPE Back Office Sign-in"},
	"staff.signin.intro":        {"Masuk dengan akun petugas Anda.", "Sign in with your staff account."},
	"staff.signin.user":         {"Nama pengguna", "User name"},
	"staff.signin.password":     {"Kata sandi", "Password"},
	"staff.signin.button":       {"Masuk", "Sign in"},
	"staff.signin.failed":       {"Gagal masuk: nama pengguna atau kata sandi salah, atau akun sedang dikunci sementara.", "Sign-in failed: the user name or password is wrong, or the account is locked for a while."},
	"staff.signin.rate-limited": {"Terlalu banyak percobaan masuk dari alamat ini. Tunggu sebentar, lalu coba lagi.", "Too many sign-in attempts from this address. Wait a moment, then try again."},
	"staff.signin.expired":      {"Formulir sudah kedaluwarsa. Silakan coba lagi.", "The form has expired. Please try again."},
	"staff.signin.signed-out":   {"Anda sudah keluar.", "You are signed out."},
	"staff.signin.oidc":         {"Masuk dengan akun instansi Anda (OpenID Connect)", "Sign in with your institution's account (OpenID Connect)"},
	"staff.signin.signout":      {"Keluar", "Sign out"},
	// The semester report's XLSX document properties (WriteReportXLSX).
	"staff.report.title":   {"Laporan Semester Penggunaan NIK dan KTP-el %s", "Semester Report on NIK and KTP-el Use %s"},
	"staff.report.subject": {"Instansi: %s", "Institutions: %s"},
	"staff.report.period":  {"Periode %s s.d. %s (%s, UTC%s)", "Period %s to %s (%s, UTC%s)"},
}
