package i18n

// identity holds the warnings of the identifier cross-checks (NIP, NIK),
// shown to the clerk with a card's data (identity.*). Each warning is a
// whole message. An invalid identifier is said in up to three sentences,
// joined by a space: that it is invalid (identity.nip.invalid), why
// (identity.nip.reason.*, when the reason is known) and what to check
// (identity.nip.recheck). No text holds an identifier's value.
var identity = table{
	// A card's own data disagrees with its NIP or NIK.
	"identity.nip.birthdate_mismatch": {
		"Tanggal lahir pada NIP tidak sama dengan tanggal lahir di kartu. Periksa dokumen pendukung.",
		"The birth date in the NIP does not match the card's birth date. Check supporting documents."},
	"identity.nip.gender_mismatch": {
		"Jenis kelamin pada NIP tidak sama dengan jenis kelamin di kartu. Periksa dokumen pendukung.",
		"The gender in the NIP does not match the gender on the card. Check supporting documents."},
	"identity.nik.birthdate_mismatch": {
		"Tanggal lahir pada NIK tidak sama dengan tanggal lahir di kartu. Periksa dokumen pendukung.",
		"The birth date in the NIK does not match the card's birth date. Check supporting documents."},
	"identity.nik.gender_mismatch": {
		"Jenis kelamin pada NIK tidak sama dengan jenis kelamin di kartu. Periksa dokumen pendukung.",
		"The gender in the NIK does not match the gender on the card. Check supporting documents."},
	"identity.nik.unknown_province": {
		"Kode provinsi pada NIK belum dikenal oleh terminal ini. Transaksi tetap dapat dilanjutkan. " +
			"Jika ragu, periksa KTP-el atau Kartu Keluarga dan laporkan ke teknisi agar daftar provinsi diperbarui.",
		"The province code in the NIK is not known to this terminal. The transaction can continue. " +
			"If in doubt, check the KTP-el or family card (Kartu Keluarga) and tell a technician so the province list can be updated."},

	// A NIP and a NIK do not describe the same person.
	"identity.nip_nik.birthdate_mismatch": {
		"Tanggal lahir pada NIP dan NIK tidak sama. Pastikan KPE dan KTP-el milik orang yang sama, lalu periksa dokumen pendukung.",
		"The birth dates in the NIP and the NIK differ. Make sure the KPE and the KTP-el belong to the same person, then check supporting documents."},
	"identity.nip_nik.gender_mismatch": {
		"Jenis kelamin pada NIP dan NIK tidak sama. Pastikan KPE dan KTP-el milik orang yang sama, lalu periksa dokumen pendukung.",
		"The genders in the NIP and the NIK differ. Make sure the KPE and the KTP-el belong to the same person, then check supporting documents."},
	"identity.nip_nik.both_mismatch": {
		"Tanggal lahir dan jenis kelamin pada NIP dan NIK tidak sama. Pastikan KPE dan KTP-el milik orang yang sama, lalu periksa dokumen pendukung.",
		"The birth dates and genders in the NIP and the NIK differ. Make sure the KPE and the KTP-el belong to the same person, then check supporting documents."},

	// An invalid NIP: the headline, the reasons, what to check.
	"identity.nip.invalid": {"NIP tidak valid.", "The NIP is not valid."},
	"identity.nip.reason.length": {
		"NIP harus terdiri dari 18 digit angka.", "A NIP must have exactly 18 digits."},
	"identity.nip.reason.not_digits": {
		"NIP hanya boleh berisi angka.", "A NIP may contain digits only."},
	"identity.nip.reason.birth_date": {
		"Bagian tanggal lahir (digit 1-8) bukan tanggal yang valid.",
		"The birth-date part (digits 1-8) is not a valid date."},
	"identity.nip.reason.appointment_date": {
		"Bagian bulan pengangkatan CPNS (digit 9-14) tidak valid.",
		"The CPNS appointment part (digits 9-14) is not a valid month."},
	"identity.nip.reason.appointment_before_birth": {
		"Bulan pengangkatan CPNS lebih awal dari tanggal lahir.",
		"The CPNS appointment month is earlier than the birth date."},
	"identity.nip.reason.appointment_age": { // the youngest and oldest plausible age
		"Usia saat pengangkatan CPNS tidak wajar (di luar %d-%d tahun).",
		"The age at CPNS appointment is implausible (outside %d-%d years)."},
	"identity.nip.reason.gender_digit": {
		"Digit jenis kelamin (digit ke-15) harus 1 atau 2.",
		"The gender digit (15th digit) must be 1 or 2."},
	"identity.nip.reason.sequence": {
		"Nomor urut (digit 16-18) tidak boleh 000.",
		"The sequence number (digits 16-18) must not be 000."},
	"identity.nip.recheck": {
		"Mohon periksa kembali NIP pada kartu dan dokumen kepegawaian.",
		"Please check the NIP on the card against the personnel documents."},

	// An invalid NIK: the headline, the reasons, what to check.
	"identity.nik.invalid": {"NIK tidak valid.", "The NIK is not valid."},
	"identity.nik.reason.length": {
		"NIK harus terdiri dari 16 digit angka.", "A NIK must have exactly 16 digits."},
	"identity.nik.reason.not_digits": {
		"NIK hanya boleh berisi angka.", "A NIK may contain digits only."},
	"identity.nik.reason.region": {
		"Kode wilayah (digit 1-6) tidak valid.", "The region code (digits 1-6) is not valid."},
	"identity.nik.reason.birth_date": {
		"Bagian tanggal lahir (digit 7-12) bukan tanggal yang valid.",
		"The birth-date part (digits 7-12) is not a valid date."},
	"identity.nik.reason.sequence": {
		"Nomor urut (digit 13-16) tidak boleh 0000.",
		"The sequence number (digits 13-16) must not be 0000."},
	"identity.nik.recheck": {
		"Mohon periksa kembali NIK pada KTP-el atau Kartu Keluarga.",
		"Please check the NIK on the KTP-el or the family card (Kartu Keluarga)."},
}
