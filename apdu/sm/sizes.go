package sm

// Sizes of protected APDUs (ICAO Doc 9303 part 11 §9.8). The terminal's
// readers and the lab's card side both size their data with these, so the
// two cannot drift apart.

// Framing of the protected data field, in bytes.
const (
	do87Overhead = 1 + 3 + 1 // tag 87, length (up to 3 bytes), padding-content indicator
	do97Len      = 3         // 97 01 Le
	do99Len      = 4         // 99 02 SW1 SW2
	do8ELen      = 2 + 8     // 8E 08 MAC
)

// MaxPlainResponse returns the largest plain response data that fits a
// response data field of bufLen bytes once protected: DO'87' (with the
// data padded to the cipher's block), DO'99' and DO'8E'. It is never
// negative.
func MaxPlainResponse(bufLen int, c Cipher) int {
	return maxPlain(bufLen-do99Len-do8ELen-do87Overhead, c)
}

// MaxPlainCommand returns the largest plain command data that fits a
// command data field of maxNc bytes once protected: DO'87' (with the data
// padded to the cipher's block), DO'97' and DO'8E'. It is never negative.
func MaxPlainCommand(maxNc int, c Cipher) int {
	return maxPlain(maxNc-do97Len-do8ELen-do87Overhead, c)
}

// maxPlain returns the largest plain length whose padding (at least one
// byte, up to the block) fits room.
func maxPlain(room int, c Cipher) int {
	bs := c.blockSize()
	return max(room/bs*bs-1, 0)
}
