package identity

// Region is the 6-digit administrative region code at the start of a NIK
// or KK: province, regency/city (kabupaten/kota) and district (kecamatan),
// two digits each.
type Region struct {
	Province string // 2 digits, e.g. "32"
	Regency  string // 2 digits
	District string // 2 digits
}

// String returns the 6-digit code.
func (r Region) String() string { return r.Province + r.Regency + r.District }

// ProvinceKnown reports whether the province code is in the province table.
// An unknown province is not an error (see ProvinceName).
func (r Region) ProvinceKnown() bool {
	_, ok := provinces[r.Province]
	return ok
}

// parseRegion splits the first six digits of d. Each segment must be
// non-zero; whether the province is known is not checked here.
func parseRegion(d, field string) (Region, error) {
	r := Region{Province: d[0:2], Regency: d[2:4], District: d[4:6]}
	for i, seg := range []string{r.Province, r.Regency, r.District} {
		if seg == "00" {
			return Region{}, newError(field, digitRange(2*i+1, 2*i+2),
				"region segment is 00", ErrBadRegion)
		}
	}
	return r, nil
}
