package identity

// BPJSLength is the number of digits in a BPJS Kesehatan participant
// number (Nomor Kartu JKN-KIS).
const BPJSLength = 13

// ParseBPJS checks a BPJS Kesehatan participant number structurally and
// returns its 13 normalised digits. Separators are handled as in ParseNIP.
// The number has no documented check digit and its internal layout is not
// interpreted. The returned error is an *Error (ErrLength, ErrNotDigits)
// and never contains the input.
func ParseBPJS(s string) (string, error) {
	return normalize(s, BPJSLength, FieldBPJS)
}
