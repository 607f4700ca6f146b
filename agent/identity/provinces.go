package identity

// provinces maps the two-digit province codes used as the first two digits
// of a NIK and a KK to the province name.
//
// Source: the Ministry of Home Affairs (Kemendagri) administrative region
// codes, Kepmendagri No. 100.1.1-6117 Tahun 2022 and later updates, which
// added the provinces created in 2022 from Papua and Papua Barat
// (UU 14, 15 and 16 Tahun 2022: Papua Selatan, Papua Tengah, Papua
// Pegunungan; UU 29 Tahun 2022: Papua Barat Daya) for 38 provinces in all.
//
// A NIK keeps the code of the region where it was issued; it is not
// re-issued when the holder moves or a province is split. A person now
// living in Papua Tengah may therefore hold a NIK starting with 91.
//
// This is the only place where province codes are listed. A code missing
// here is NOT an error: new provinces are created from time to time, so
// ParseNIK and ParseKK accept any non-zero code and report ProvinceKnown;
// CheckNIK turns an unknown code into a warning (nik.unknown_province).
// When a province is created, add it here.
var provinces = map[string]string{
	"11": "Aceh",
	"12": "Sumatera Utara",
	"13": "Sumatera Barat",
	"14": "Riau",
	"15": "Jambi",
	"16": "Sumatera Selatan",
	"17": "Bengkulu",
	"18": "Lampung",
	"19": "Kepulauan Bangka Belitung",
	"21": "Kepulauan Riau",
	"31": "DKI Jakarta",
	"32": "Jawa Barat",
	"33": "Jawa Tengah",
	"34": "DI Yogyakarta",
	"35": "Jawa Timur",
	"36": "Banten",
	"51": "Bali",
	"52": "Nusa Tenggara Barat",
	"53": "Nusa Tenggara Timur",
	"61": "Kalimantan Barat",
	"62": "Kalimantan Tengah",
	"63": "Kalimantan Selatan",
	"64": "Kalimantan Timur",
	"65": "Kalimantan Utara",
	"71": "Sulawesi Utara",
	"72": "Sulawesi Tengah",
	"73": "Sulawesi Selatan",
	"74": "Sulawesi Tenggara",
	"75": "Gorontalo",
	"76": "Sulawesi Barat",
	"81": "Maluku",
	"82": "Maluku Utara",
	"91": "Papua",
	"92": "Papua Barat",
	"93": "Papua Selatan",
	"94": "Papua Tengah",
	"95": "Papua Pegunungan",
	"96": "Papua Barat Daya",
}

// ProvinceName returns the name of the province with the given two-digit
// code and whether the code is known.
func ProvinceName(code string) (string, bool) {
	name, ok := provinces[code]
	return name, ok
}
