package apdu

import (
	"context"
	"errors"
	"fmt"

	"kpe-agent/internal/tlv"
)

// Limits describes how much data the card accepts and returns per APDU.
// The zero value is a short-length-only card (255 / 256 bytes).
type Limits struct {
	// MaxCommandData is the largest Nc the card accepts in one APDU.
	// Longer data is sent with command chaining. Zero means the largest
	// value the length fields allow: 255, or 65535 with Extended.
	MaxCommandData int
	// MaxResponseData is the largest Ne the card returns in one APDU (the
	// card's announced buffer). Zero means 256, or 65536 with Extended.
	MaxResponseData int
	// Extended: the card supports extended length fields. Without it no
	// APDU the client builds uses them, whatever the two maxima say.
	Extended bool
}

// effective returns the per-APDU maxima actually used: the configured
// values, defaulted when not positive and capped by the length fields
// available.
func (l Limits) effective() (maxNc, maxNe int) {
	capNc, capNe := MaxShortNc, MaxShortNe
	if l.Extended {
		capNc, capNe = MaxExtendedNc, MaxExtendedNe
	}
	maxNc, maxNe = l.MaxCommandData, l.MaxResponseData
	if maxNc <= 0 || maxNc > capNc {
		maxNc = capNc
	}
	if maxNe <= 0 || maxNe > capNe {
		maxNe = capNe
	}
	return maxNc, maxNe
}

// Defaults of the Client bounds.
const (
	// DefaultMaxGetResponse bounds the GET RESPONSE commands issued for one
	// command: 512 allows a 64 KiB response delivered in pieces of 128
	// bytes.
	DefaultMaxGetResponse = 512
	// DefaultMaxFileSize bounds the size of an EF read by ReadBinary and
	// ReadEF (1 MiB).
	DefaultMaxFileSize = 1 << 20
)

// maxResponseTotal bounds the data collected for one command over GET
// RESPONSE: ISO/IEC 7816-4 never lets a response exceed Ne <= 65536.
const maxResponseTotal = MaxExtendedNe

// Client sends commands to a card and implements the transmission rules of
// ISO/IEC 7816-4 on top of a Transmitter: GET RESPONSE on 61xx, re-issue on
// 6Cxx, command chaining, and large READ BINARY.
//
// Every error a Client returns wraps one of: a transport sentinel passed
// through from the Transmitter (ErrTimeout, ErrCardRemoved, ...),
// ErrMalformedResponse (the card broke the protocol or a bound was hit),
// a *StatusError or *RetriesError (the card's status word), or
// ErrInvalidCommand (bad arguments). A Client is as safe for concurrent use
// as its Transmitter; a card session is a sequence of commands anyway, so
// use one goroutine (and Card.BeginTransaction) per logical operation.
type Client struct {
	T      Transmitter
	Limits Limits
	// MaxGetResponse bounds the number of GET RESPONSE commands for one
	// command; zero means DefaultMaxGetResponse.
	MaxGetResponse int
	// MaxFileSize bounds the EF size ReadBinary and ReadEF accept; zero
	// means DefaultMaxFileSize.
	MaxFileSize int
}

// NewClient returns a Client sending through t with the given limits and
// the default bounds.
func NewClient(t Transmitter, l Limits) *Client {
	return &Client{T: t, Limits: l}
}

func (c *Client) maxGetResponse() int {
	if c.MaxGetResponse > 0 {
		return c.MaxGetResponse
	}
	return DefaultMaxGetResponse
}

func (c *Client) maxFileSize() int {
	if c.MaxFileSize > 0 {
		return c.MaxFileSize
	}
	return DefaultMaxFileSize
}

// insNames names the instructions this package sends, for error messages.
var insNames = map[byte]string{
	0x20: "VERIFY", 0x22: "MANAGE SECURITY ENVIRONMENT", 0x24: "CHANGE REFERENCE DATA",
	0x2A: "PERFORM SECURITY OPERATION", 0x2C: "RESET RETRY COUNTER",
	0x82: "EXTERNAL AUTHENTICATE", 0x84: "GET CHALLENGE", 0x86: "GENERAL AUTHENTICATE",
	0x87: "GENERAL AUTHENTICATE", 0x88: "INTERNAL AUTHENTICATE", 0xA4: "SELECT",
	0xB0: "READ BINARY", 0xB1: "READ BINARY", 0xB2: "READ RECORD", 0xC0: "GET RESPONSE",
	0xCA: "GET DATA", 0xCB: "GET DATA", 0xDA: "PUT DATA", 0xDB: "PUT DATA",
}

func insName(ins byte) string {
	if n, ok := insNames[ins]; ok {
		return n
	}
	return fmt.Sprintf("INS %02X", ins)
}

// ctxErr reports a done context in the transport's terms: a passed
// deadline wraps ErrTimeout, a cancellation wraps context.Canceled.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("apdu: %w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("apdu: %w", err)
}

// transmit sends one APDU and parses the response; no status handling.
func (c *Client) transmit(ctx context.Context, cmd Command) (Response, error) {
	raw, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return Response{}, err
	}
	if c.T == nil {
		return Response{}, fmt.Errorf("%w: client has no transmitter", ErrInvalidCommand)
	}
	rb, err := c.T.Transmit(ctx, raw)
	if err != nil {
		return Response{}, fmt.Errorf("apdu: %s: %w", insName(cmd.INS), err)
	}
	r, err := ParseResponse(rb)
	if err != nil {
		return Response{}, fmt.Errorf("apdu: %s: %w", insName(cmd.INS), err)
	}
	return r, nil
}

// Do sends cmd and returns the card's final response, whatever its status
// word. It takes care of transmission details:
//
//   - Ne is lowered to the card's MaxResponseData (and to 256 without
//     extended length); the rest, if any, arrives through 61xx.
//   - Data longer than MaxCommandData (255 without extended length) is sent
//     with command chaining (ISO/IEC 7816-4 §5.3.3): every APDU but the
//     last has CLA bit b5 (0x10) set and must be answered with 9000, or Do
//     returns that response with its status error.
//   - 6Cxx: the command is re-issued once with Ne = SW2 (00 = 256), as
//     ISO/IEC 7816-4 requires, even if that exceeds MaxResponseData (the
//     card itself asked for it). A second 6Cxx is an error wrapping
//     ErrMalformedResponse and ErrWrongLe.
//   - 61xx: GET RESPONSE (CLA 00 on the same logical channel, INS C0,
//     Ne = SW2 with 00 = 256, lowered to MaxResponseData) is repeated and
//     the data concatenated until another status word arrives. More than MaxGetResponse rounds or more
//     than 65536 bytes in total is an error wrapping ErrMalformedResponse.
//
// Do returns an error only when no complete response could be obtained;
// use Send, or Response.Err, to turn the status word into an error.
func (c *Client) Do(ctx context.Context, cmd Command) (Response, error) {
	if cmd.Ne < 0 || cmd.Ne > MaxExtendedNe {
		return Response{}, fmt.Errorf("%w: Ne %d outside 0..%d", ErrInvalidCommand, cmd.Ne, MaxExtendedNe)
	}
	maxNc, maxNe := c.Limits.effective()
	data := cmd.Data
	for len(data) > maxNc {
		seg := Command{CLA: cmd.CLA | 0x10, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:maxNc]}
		r, err := c.transmit(ctx, seg)
		if err != nil {
			return Response{}, err
		}
		if r.SW != 0x9000 {
			return r, fmt.Errorf("apdu: %s: chained APDU refused: %w", insName(cmd.INS), StatusWordError(r.SW))
		}
		data = data[maxNc:]
	}
	last := cmd
	last.Data = data
	last.Ne = min(cmd.Ne, maxNe)
	return c.exchange(ctx, last)
}

// exchangeOnce sends cmd and re-issues it once on 6Cxx.
func (c *Client) exchangeOnce(ctx context.Context, cmd Command) (Response, error) {
	r, err := c.transmit(ctx, cmd)
	if err != nil || r.SW1() != 0x6C {
		return r, err
	}
	cmd.Ne = retryLen(r.SW2())
	r, err = c.transmit(ctx, cmd)
	if err != nil {
		return r, err
	}
	if r.SW1() == 0x6C {
		return r, fmt.Errorf("apdu: %s: %w: wrong Le reported twice: %w", insName(cmd.INS), ErrMalformedResponse, StatusWordError(r.SW))
	}
	return r, nil
}

// exchange sends cmd, handling 6Cxx and then 61xx.
func (c *Client) exchange(ctx context.Context, cmd Command) (Response, error) {
	_, maxNe := c.Limits.effective()
	r, err := c.exchangeOnce(ctx, cmd)
	if err != nil || r.SW1() != 0x61 {
		return r, err
	}
	data := r.Data
	limit := c.maxGetResponse()
	for rounds := 0; r.SW1() == 0x61; rounds++ {
		if rounds >= limit {
			return Response{}, fmt.Errorf("apdu: %s: %w: more than %d GET RESPONSE rounds", insName(cmd.INS), ErrMalformedResponse, limit)
		}
		gr := Command{CLA: getResponseCLA(cmd.CLA), INS: InsGetResponse, Ne: min(retryLen(r.SW2()), maxNe)}
		if r, err = c.exchangeOnce(ctx, gr); err != nil {
			return Response{}, err
		}
		if len(data)+len(r.Data) > maxResponseTotal {
			return Response{}, fmt.Errorf("apdu: %s: %w: response longer than %d bytes", insName(cmd.INS), ErrMalformedResponse, maxResponseTotal)
		}
		data = append(data, r.Data...)
	}
	return Response{Data: data, SW: r.SW}, nil
}

// getResponseCLA returns the CLA for GET RESPONSE after a command sent with
// cla: interindustry, no secure messaging, no chaining, same logical
// channel. Proprietary classes get CLA 00.
func getResponseCLA(cla byte) byte {
	switch {
	case cla&0x80 != 0:
		return 0x00
	case cla&0x40 != 0: // further interindustry: channel in b4..b1
		return 0x40 | cla&0x0F
	}
	return cla & 0x03 // first interindustry: channel in b2..b1
}

// Send is Do followed by status checking: it returns the response data for
// 9000. For any other status word it returns the *StatusError (or
// *RetriesError for 63Cx), with the response data for warnings (62xx,
// 63xx) and nil data for errors.
func (c *Client) Send(ctx context.Context, cmd Command) ([]byte, error) {
	r, err := c.Do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if r.SW == 0x9000 {
		return r.Data, nil
	}
	serr := fmt.Errorf("apdu: %s: %w", insName(cmd.INS), StatusWordError(r.SW))
	if IsWarning(r.SW) {
		return r.Data, serr
	}
	return nil, serr
}

// SelectAID selects an application by its AID (SELECT by DF name,
// 00 A4 04 00, first or only occurrence) and returns the FCI the card sends
// (possibly empty).
func (c *Client) SelectAID(ctx context.Context, aid []byte) ([]byte, error) {
	if err := checkAID(aid); err != nil {
		return nil, err
	}
	return c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsSelect, P1: SelectByName, P2: SelectReturnFCI, Data: aid, Ne: MaxShortNe})
}

// SelectAIDNoResponse selects an application by its AID without asking for
// its FCI (00 A4 04 0C, no Le): the form recognition uses, where only the
// status word matters.
func (c *Client) SelectAIDNoResponse(ctx context.Context, aid []byte) error {
	if err := checkAID(aid); err != nil {
		return err
	}
	_, err := c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsSelect, P1: SelectByName, P2: SelectNoResponse, Data: aid})
	return err
}

func checkAID(aid []byte) error {
	if len(aid) == 0 || len(aid) > MaxAIDLen {
		return fmt.Errorf("%w: AID of %d bytes (want 1..%d)", ErrInvalidCommand, len(aid), MaxAIDLen)
	}
	return nil
}

// SelectFID selects a file by its file identifier (00 A4 00 04 fid, i.e.
// P1 00: MF, DF or EF, looked up under the current DF; 3F00 selects the
// MF) and returns the FCP template the card sends (tag 62).
func (c *Client) SelectFID(ctx context.Context, fid uint16) ([]byte, error) {
	return c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsSelect, P1: SelectByFID, P2: SelectReturnFCP, Data: fidBytes(fid), Ne: MaxShortNe})
}

// SelectFIDNoResponse selects a file by its file identifier without asking
// for response data (00 A4 00 0C fid, no Le): for a DF whose FCP is not
// needed, and for cards that refuse to return an FCP.
func (c *Client) SelectFIDNoResponse(ctx context.Context, fid uint16) error {
	_, err := c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsSelect, P1: SelectByFID, P2: SelectNoResponse, Data: fidBytes(fid)})
	return err
}

// selectForRead selects fid asking for the FCP and, when the card rejects
// that form of SELECT (6A86, 6A00, 6B00, 6A81), selects it again without
// response data. Warnings (62xx, e.g. 6283 file deactivated) are ignored:
// the file is selected, and a following READ BINARY reports the problem.
func (c *Client) selectForRead(ctx context.Context, fid uint16) ([]byte, error) {
	fcp, err := c.SelectFID(ctx, fid)
	var se *StatusError
	switch {
	case err == nil:
		return fcp, nil
	case errors.Is(err, ErrWrongP1P2), errors.Is(err, ErrFunctionNotSupported):
		return nil, c.SelectFIDNoResponse(ctx, fid)
	case errors.As(err, &se) && IsWarning(se.SW):
		return fcp, nil
	}
	return nil, err
}

func fidBytes(fid uint16) []byte { return []byte{byte(fid >> 8), byte(fid)} }

// FileSize returns the size of a transparent EF from its FCP: the value of
// tag 80 (number of data bytes, excluding structural information), or of
// tag 81 when 80 is absent, inside the FCP template 62. An FCI template
// (6F) holding these tags directly or in a 62 is accepted too. An error
// wrapping ErrMalformedResponse is returned for an unparsable FCP or one
// without a size.
func FileSize(fcp []byte) (int, error) {
	size, ok, err := fileSize(fcp)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("apdu: %w: no file size (tag 80 or 81) in FCP", ErrMalformedResponse)
	}
	return size, nil
}

// fileSize is FileSize reporting a missing size as ok == false.
func fileSize(fcp []byte) (size int, ok bool, err error) {
	if len(fcp) == 0 {
		return 0, false, nil
	}
	list, err := tlv.ParseWith(fcp, tlv.Options{AllowPadding: true})
	if err != nil {
		return 0, false, fmt.Errorf("apdu: %w: FCP: %w", ErrMalformedResponse, err)
	}
	for _, path := range [][]tlv.Tag{{0x62, 0x80}, {0x62, 0x81}, {0x6F, 0x62, 0x80}, {0x6F, 0x62, 0x81}, {0x6F, 0x80}, {0x6F, 0x81}} {
		if t, found := tlv.Find(list, path...); found {
			n, err := unsignedInt(t.Value)
			if err != nil {
				return 0, false, fmt.Errorf("apdu: %w: FCP tag %X: %w", ErrMalformedResponse, path[len(path)-1], err)
			}
			return n, true, nil
		}
	}
	return 0, false, nil
}

// unsignedInt decodes a 1..4 byte big-endian unsigned number (leading zero
// bytes are ignored).
func unsignedInt(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > 4 {
		return 0, fmt.Errorf("number of %d bytes", len(b))
	}
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	if n > 1<<31-1 {
		return 0, fmt.Errorf("number %d too large", n)
	}
	return int(n), nil
}

// maxB0Offset is the largest offset READ BINARY with even INS (B0) can
// address: 15 bits of P1-P2.
const maxB0Offset = 0x7FFF

// berLenLen returns the size of the BER length field for a value of n bytes.
func berLenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	case n < 0x10000:
		return 3
	}
	return 4
}

// b1Overhead is what the discretionary data object wrapping k bytes of file
// content costs in a READ BINARY (B1) response: tag 53 and its length.
func b1Overhead(k int) int { return 1 + berLenLen(k) }

// b1Capacity returns the most file content bytes one B1 response can carry
// when the card returns at most maxNe bytes.
func b1Capacity(maxNe int) int {
	k := maxNe - 2
	for k > 0 && k+b1Overhead(k) > maxNe {
		k--
	}
	return max(k, 0)
}

// b1Cost returns the number of B1 commands needed for r bytes (a large
// number when B1 cannot carry anything).
func b1Cost(r, k int) int {
	switch {
	case r <= 0:
		return 0
	case k <= 0:
		return 1 << 40
	}
	return (r + k - 1) / k
}

// nextChunk returns how many bytes the next READ BINARY at offset off
// should ask for, to read up to size with the fewest commands, and whether
// it must use odd INS B1. It is an optimal policy from any offset, so the
// reader can follow it again after a short answer.
//
// B0 commands can read maxNe bytes each but only start at offsets up to
// 32767; B1 commands start anywhere but carry fewer content bytes
// (b1Capacity). Full B0 reads are best while the next one can still start
// at or below 32767. At the boundary one choice remains: read maxNe bytes
// now (ending above 32767, B1 from there), or first read up to exactly
// offset 32767 so that one more full B0 fits; the cheaper one wins.
func nextChunk(off, size, maxNe int) (n int, odd bool) {
	r := size - off
	k := b1Capacity(maxNe)
	if off > maxB0Offset {
		return min(r, k), true
	}
	if r <= maxNe {
		return r, false
	}
	if off+maxNe <= maxB0Offset {
		return maxNe, false
	}
	if d := maxB0Offset - off; d > 0 {
		full := 1 + b1Cost(r-maxNe, k)
		split := 2 + b1Cost(r-d-maxNe, k)
		if split < full {
			return d, false
		}
	}
	return maxNe, false
}

// planRead returns the number of READ BINARY commands for size bytes, or
// -1 when they cannot be read (maxNe too small to carry a B1 response).
func planRead(size, maxNe int) int {
	n, off := 0, 0
	for off < size && off <= maxB0Offset {
		c, _ := nextChunk(off, size, maxNe)
		off += c
		n++
	}
	if off >= size {
		return n
	}
	k := b1Capacity(maxNe)
	if k == 0 {
		return -1
	}
	return n + b1Cost(size-off, k)
}

// PlanReadBinary returns the number of READ BINARY commands ReadBinary
// sends to read size bytes under l when the card answers every command in
// full: the minimum possible. It returns -1 when size bytes cannot be read
// (MaxResponseData below 3 and a file larger than 32767 + MaxResponseData).
func PlanReadBinary(size int, l Limits) int {
	if size <= 0 {
		return 0
	}
	_, maxNe := l.effective()
	return planRead(size, maxNe)
}

// readBinaryCommand builds READ BINARY for n content bytes at off: B0 with
// the offset in P1-P2, or B1 (current EF, P1-P2 0000) with the offset in
// data object 54 and Ne covering the 53 wrapper of the answer.
func readBinaryCommand(off, n int, odd bool) Command {
	if !odd {
		return Command{CLA: CLAInterindustry, INS: InsReadBinary, P1: byte(off >> 8), P2: byte(off), Ne: n}
	}
	var ob []byte
	for v := off; v > 0 || len(ob) == 0; v >>= 8 {
		ob = append([]byte{byte(v)}, ob...)
	}
	data := append([]byte{0x54, byte(len(ob))}, ob...)
	return Command{CLA: CLAInterindustry, INS: InsReadBinaryOdd, P1: 0x00, P2: 0x00, Data: data, Ne: n + b1Overhead(n)}
}

// readChunk sends one READ BINARY and returns the file content it carried
// (B1 answers unwrapped from data object 53) and the status word.
func (c *Client) readChunk(ctx context.Context, off, n int, odd bool) ([]byte, uint16, error) {
	r, err := c.Do(ctx, readBinaryCommand(off, n, odd))
	if err != nil {
		return nil, 0, err
	}
	if !odd || len(r.Data) == 0 {
		return r.Data, r.SW, nil
	}
	list, err := tlv.ParseWith(r.Data, tlv.Options{AllowNonMinimal: true})
	if err != nil {
		return nil, 0, fmt.Errorf("apdu: READ BINARY at %d: %w: %w", off, ErrMalformedResponse, err)
	}
	var content []byte
	for _, t := range list {
		if t.Tag != 0x53 {
			return nil, 0, fmt.Errorf("apdu: READ BINARY at %d: %w: data object %v instead of 53", off, ErrMalformedResponse, t.Tag)
		}
		content = append(content, t.Value...)
	}
	return content, r.SW, nil
}

// ReadBinary reads the first size bytes of the current EF with the fewest
// READ BINARY commands the limits allow (see PlanReadBinary): B0 with the
// offset in P1-P2 up to offset 32767, B1 with an offset data object above.
// Ne is min(remaining, MaxResponseData) per command, using extended length
// when the limits allow it; a B1 command asks for as much content as fits
// together with its 53 wrapper. Near offset 32767 one B0 may ask for fewer
// bytes, ending exactly at 32767, when that lets a last full B0 replace
// B1 commands (see nextChunk).
//
// A shorter answer with 9000 is accepted and reading continues from the new
// offset. The bytes read so far are returned with every error. When the
// file ends early (6282) the error wraps ErrEndOfFile; an answer with no
// data and 9000, too many short answers (more than 4 times the plan plus
// 16 commands) or more data than asked wrap ErrMalformedResponse.
func (c *Client) ReadBinary(ctx context.Context, size int) ([]byte, error) {
	if size < 0 || size > c.maxFileSize() {
		return nil, fmt.Errorf("%w: READ BINARY of %d bytes (limit %d)", ErrInvalidCommand, size, c.maxFileSize())
	}
	_, maxNe := c.Limits.effective()
	plan := planRead(size, maxNe)
	if plan < 0 {
		return nil, fmt.Errorf("%w: MaxResponseData %d cannot carry READ BINARY above offset 32767", ErrInvalidCommand, maxNe)
	}
	out := make([]byte, 0, size)
	budget := 4*plan + 16
	for cmds := 0; len(out) < size; cmds++ {
		if cmds >= budget {
			return out, fmt.Errorf("apdu: READ BINARY: %w: %d of %d bytes after %d commands", ErrMalformedResponse, len(out), size, cmds)
		}
		off := len(out)
		n, odd := nextChunk(off, size, maxNe)
		chunk, sw, err := c.readChunk(ctx, off, n, odd)
		if err != nil {
			return out, err
		}
		if len(chunk) > n {
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w: %d bytes for Ne %d", off, ErrMalformedResponse, len(chunk), n)
		}
		if sw != 0x9000 && !IsWarning(sw) {
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w", off, StatusWordError(sw))
		}
		out = append(out, chunk...)
		switch {
		case sw == 0x6282:
			if len(out) < size {
				return out, fmt.Errorf("apdu: READ BINARY: file ends at %d of %d bytes: %w", len(out), size, StatusWordError(sw))
			}
		case sw != 0x9000:
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w", off, StatusWordError(sw))
		case len(chunk) == 0:
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w: no data with 9000", off, ErrMalformedResponse)
		}
	}
	return out, nil
}

// readToEnd reads the current EF from offset 0 when its size is unknown:
// until 6282, 6B00 (offset beyond the end) or an answer shorter than asked.
func (c *Client) readToEnd(ctx context.Context) ([]byte, error) {
	_, maxNe := c.Limits.effective()
	limit := c.maxFileSize()
	var out []byte
	for {
		off := len(out)
		odd := off > maxB0Offset
		n := maxNe
		if odd {
			if n = b1Capacity(maxNe); n == 0 {
				return out, fmt.Errorf("%w: MaxResponseData %d cannot carry READ BINARY above offset 32767", ErrInvalidCommand, maxNe)
			}
		}
		chunk, sw, err := c.readChunk(ctx, off, n, odd)
		if err != nil {
			return out, err
		}
		if sw == 0x6B00 {
			return out, nil
		}
		if len(chunk) > n {
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w: %d bytes for Ne %d", off, ErrMalformedResponse, len(chunk), n)
		}
		if sw != 0x9000 && !IsWarning(sw) {
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w", off, StatusWordError(sw))
		}
		if len(out)+len(chunk) > limit {
			return out, fmt.Errorf("apdu: READ BINARY: %w: file longer than %d bytes", ErrMalformedResponse, limit)
		}
		out = append(out, chunk...)
		switch {
		case sw == 0x6282:
			return out, nil
		case sw != 0x9000:
			return out, fmt.Errorf("apdu: READ BINARY at %d: %w", off, StatusWordError(sw))
		case len(chunk) < n:
			return out, nil
		}
	}
}

// ReadEF selects the EF fid under the current DF (asking for its FCP) and
// reads it whole. With a size in the FCP (see FileSize) it reads exactly
// that many bytes with ReadBinary. Without one (no FCP, or an FCP lacking
// tags 80/81) it reads until the card signals the end: 6282, 6B00, or an
// answer shorter than asked. Cards that refuse to return an FCP (6A86,
// 6A00, 6B00 or 6A81 to P2 04) are handled by selecting again without
// response data.
func (c *Client) ReadEF(ctx context.Context, fid uint16) ([]byte, error) {
	fcp, err := c.selectForRead(ctx, fid)
	if err != nil {
		return nil, err
	}
	size, ok, err := fileSize(fcp)
	if err != nil {
		return nil, err
	}
	if !ok {
		return c.readToEnd(ctx)
	}
	if size > c.maxFileSize() {
		return nil, fmt.Errorf("apdu: EF %04X: %w: FCP announces %d bytes, limit is %d", fid, ErrMalformedResponse, size, c.maxFileSize())
	}
	return c.ReadBinary(ctx, size)
}

// GetChallenge asks the card for n random bytes (GET CHALLENGE,
// 00 84 00 00 with Le = n). n must be 1..MaxResponseData; an answer of any
// other length is an error wrapping ErrMalformedResponse.
func (c *Client) GetChallenge(ctx context.Context, n int) ([]byte, error) {
	if _, maxNe := c.Limits.effective(); n <= 0 || n > maxNe {
		return nil, fmt.Errorf("%w: challenge of %d bytes (want 1..%d)", ErrInvalidCommand, n, maxNe)
	}
	b, err := c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsGetChallenge, P1: 0x00, P2: 0x00, Ne: n})
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("apdu: GET CHALLENGE: %w: %d bytes instead of %d", ErrMalformedResponse, len(b), n)
	}
	return b, nil
}

// ExternalAuthenticate sends the terminal's cryptogram in EXTERNAL
// AUTHENTICATE (00 82 00 00, no key reference: the card knows its key) and
// returns the card's answer. With ne > 0 it is the mutual form of ICAO
// Doc 9303 BAC, where the card answers with its own cryptogram of ne bytes;
// the answer is returned as it came (checking it is the authentication's
// business). A refused cryptogram is the card's status error.
func (c *Client) ExternalAuthenticate(ctx context.Context, data []byte, ne int) ([]byte, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: EXTERNAL AUTHENTICATE without a cryptogram", ErrInvalidCommand)
	}
	return c.Send(ctx, Command{CLA: CLAInterindustry, INS: InsExternalAuthenticate, P1: 0x00, P2: 0x00, Data: data, Ne: ne})
}

// File identifiers and tags used by ReadLimits.
const (
	fidMF        = 0x3F00
	fidATRInfo   = 0x2F01
	tagCardCaps  = 0x47   // card capabilities (ISO/IEC 7816-4 §12.1.1.9)
	tagExtLength = 0x7F66 // extended length information (§12.7.1)
	tagInteger   = 0x02
)

// ReadLimits reads EF.ATR/INFO (FID 2F01 under the MF, ISO/IEC 7816-4
// §8.2.1.1) and derives the card's limits from its extended length
// information data object 7F66 (§12.7.1): two INTEGERs (tag 02), the
// maximum number of bytes in a command APDU and in a response APDU.
//
// Those numbers count whole APDUs, so the returned limits subtract the
// worst-case framing: MaxCommandData = first - 9 (header, 3-byte Lc,
// 2-byte Le) and MaxResponseData = second - 2 (SW1-SW2). Extended is set
// when 7F66 is present, or when the card capabilities (tag 47, third byte,
// b7) announce extended Lc and Le fields.
//
// ReadLimits selects the MF and then EF.ATR/INFO, so the current file
// changes. It does not change c.Limits: assign the result if wanted. Without
// a 7F66 object it returns the short-length defaults (Limits{}) and an
// error wrapping ErrMalformedResponse.
func (c *Client) ReadLimits(ctx context.Context) (Limits, error) {
	if _, err := c.selectForRead(ctx, fidMF); err != nil {
		return Limits{}, err
	}
	info, err := c.ReadEF(ctx, fidATRInfo)
	if errors.Is(err, ErrFileNotFound) {
		// No EF.ATR/INFO: nothing announced, so a short-length card.
		return Limits{}, nil
	}
	if err != nil {
		return Limits{}, err
	}
	return parseATRInfo(info)
}

// parseATRInfo extracts Limits from the content of EF.ATR/INFO.
func parseATRInfo(info []byte) (Limits, error) {
	list, err := tlv.ParseWith(info, tlv.Options{AllowPadding: true})
	if err != nil {
		return Limits{}, fmt.Errorf("apdu: EF.ATR/INFO: %w: %w", ErrMalformedResponse, err)
	}
	var l Limits
	if caps, ok := tlv.Find(list, tagCardCaps); ok && len(caps.Value) >= 3 && caps.Value[2]&0x40 != 0 {
		l.Extended = true
	}
	ext, ok := tlv.Find(list, tagExtLength)
	if !ok {
		// Without 7F66 the card announces no buffer beyond the short
		// length fields (extended support, if flagged, uses the defaults).
		return l, nil
	}
	var ints []int
	for _, ch := range ext.Children {
		if ch.Tag != tagInteger {
			continue
		}
		n, err := unsignedInt(ch.Value)
		if err != nil {
			return Limits{}, fmt.Errorf("apdu: EF.ATR/INFO 7F66: %w: %w", ErrMalformedResponse, err)
		}
		ints = append(ints, n)
	}
	if len(ints) < 2 {
		return Limits{}, fmt.Errorf("apdu: EF.ATR/INFO 7F66: %w: %d integers, want 2", ErrMalformedResponse, len(ints))
	}
	l.Extended = true
	l.MaxCommandData = min(ints[0]-9, MaxExtendedNc)
	l.MaxResponseData = min(ints[1]-2, MaxExtendedNe)
	if l.MaxCommandData < 1 || l.MaxResponseData < 1 {
		return Limits{}, fmt.Errorf("apdu: EF.ATR/INFO 7F66: %w: APDU sizes %d and %d too small", ErrMalformedResponse, ints[0], ints[1])
	}
	return l, nil
}
