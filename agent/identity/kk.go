package identity

// KKLength is the number of digits in a KK number.
const KKLength = 16

// KK is a parsed Kartu Keluarga (family card) number, 16 digits starting
// with the 6-digit region code of the issuing district. The KK number
// changes when a family moves or splits, so it is not a stable identifier
// of a person. Only the region code is interpreted; the remaining ten
// digits are kept as they are.
type KK struct {
	// Raw holds the 16 normalised digits (separators removed).
	Raw string
	// Region is the issuing region. The province may be unknown to this
	// package (Region.ProvinceKnown); that is not an error.
	Region Region
}

// String returns the 16 digits without separators.
func (k KK) String() string { return k.Raw }

// ParseKK parses a KK number: 16 digits (ErrLength, ErrNotDigits) whose
// region segments are not 00 (ErrBadRegion). Separators are handled as in
// ParseNIP. The returned error is an *Error and never contains the input.
func ParseKK(s string) (KK, error) {
	d, err := normalize(s, KKLength, FieldKK)
	if err != nil {
		return KK{}, err
	}
	region, err := parseRegion(d, FieldKKRegion)
	if err != nil {
		return KK{}, err
	}
	return KK{Raw: d, Region: region}, nil
}
