package record

// CheckTerminalID says whether id is a terminal id a record can carry
// (Validate's rule for the field): 1 to 64 bytes of UTF-8 without control
// characters. The back office holds a terminal's TLS identity to the same
// rule, so that every identity it accepts can be compared with records.
func CheckTerminalID(id string) error { return checkText("terminal id", id, maxID, false) }
