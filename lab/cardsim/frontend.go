package cardsim

import "fmt"

// Default and maximum transport limits of a simulated card.
const (
	DefaultMaxCommandData  = 255
	DefaultMaxResponseData = 256
	// MaxExtendedCommandData is the largest Nc of an extended C-APDU.
	MaxExtendedCommandData = 65535
	// MaxExtendedResponseData is the largest response data field a card can
	// send through vpcd: frames carry at most 65535 bytes including SW1 SW2.
	MaxExtendedResponseData = 65533
	// MaxChainedData caps the data assembled from one command chain.
	MaxChainedData = 65536
)

// Limits are the transport-level properties of a simulated card.
type Limits struct {
	// MaxCommandData is the largest Nc accepted in one C-APDU (larger → 6700).
	MaxCommandData int
	// MaxResponseData is the largest response data field the card sends in
	// one R-APDU (the card's announced buffer size).
	MaxResponseData int
	// ExtendedLength: extended-length C-APDUs are accepted (else → 6700).
	ExtendedLength bool
	// T0GetResponse: every response with data is announced with 61xx and
	// fetched with GET RESPONSE (00 C0 00 00 Le), as on T=0 cards.
	T0GetResponse bool
	// StrictLe: commands whose Le asks for more than is available are
	// answered 6Cxx with the exact count instead of data. Applets decide
	// which commands honour it (see FileSystemCard); the Frontend applies it
	// to GET RESPONSE.
	StrictLe bool
}

// WithDefaults fills zero limits with the defaults (255 / 256).
func (l Limits) WithDefaults() Limits {
	if l.MaxCommandData == 0 {
		l.MaxCommandData = DefaultMaxCommandData
	}
	if l.MaxResponseData == 0 {
		l.MaxResponseData = DefaultMaxResponseData
	}
	return l
}

// Validate checks the limits against what short or extended APDUs and vpcd
// can carry.
func (l Limits) Validate() error {
	maxCmd, maxResp := 255, 256
	if l.ExtendedLength {
		maxCmd, maxResp = MaxExtendedCommandData, MaxExtendedResponseData
	}
	if l.MaxCommandData < 1 || l.MaxCommandData > maxCmd {
		return fmt.Errorf("max_command_data %d out of range 1..%d (extended_length=%v)",
			l.MaxCommandData, maxCmd, l.ExtendedLength)
	}
	if l.MaxResponseData < 1 || l.MaxResponseData > maxResp {
		return fmt.Errorf("max_response_data %d out of range 1..%d (extended_length=%v)",
			l.MaxResponseData, maxResp, l.ExtendedLength)
	}
	return nil
}

// Handler handles one complete command (after de-chaining) and returns the
// response data and status word. The data must not exceed
// Limits.MaxResponseData (the Frontend answers 6F00 otherwise).
type Handler func(cmd Command) ([]byte, SW)

// Frontend implements the application-independent part of card-side command
// processing, so that every simulated applet behaves the same way:
//
//   - CLA: proprietary classes (and FF) → 6E00 unless ProprietaryClass is
//     set (FF is always refused); secure messaging → 6882 unless
//     SecureMessaging is set; a logical
//     channel other than 0 → 6881.
//   - Length: malformed length fields, an extended APDU without
//     Limits.ExtendedLength, or Nc > Limits.MaxCommandData → 6700.
//   - Command chaining (CLA bit 0x10): only for instructions accepted by
//     Chainable (else 6884); links are answered 9000 and the assembled data
//     is handed to the Handler with the last command; a command that does
//     not continue the pending chain (different INS, P1 or P2) → 6883 and
//     the chain is dropped; more than MaxChainedData bytes → 6A84.
//   - Limits.T0GetResponse: data is announced with 61xx and fetched with
//     GET RESPONSE; any other command discards pending data.
//
// A Frontend is not safe for concurrent use; the owning card serialises.
type Frontend struct {
	Limits Limits
	// Chainable reports whether an instruction accepts command chaining.
	// Nil: no instruction does.
	Chainable func(ins byte) bool
	// ProprietaryClass accepts CLA 80..FE, decoded like the first
	// interindustry values (chaining 0x10, SM 0x0C, channel 0x03).
	ProprietaryClass bool
	// SecureMessaging passes commands with a secure-messaging CLA to the
	// Handler, which unwraps them (applets with SM). Without it they get
	// 6882.
	SecureMessaging bool

	chain     *chainState
	pending   []byte
	pendingSW SW
	hasPend   bool
}

type chainState struct {
	ins, p1, p2 byte
	data        []byte
}

// Reset drops any pending chain and pending GET RESPONSE data (card reset).
func (f *Frontend) Reset() {
	f.chain = nil
	f.clearPending()
}

func (f *Frontend) clearPending() {
	f.pending, f.pendingSW, f.hasPend = nil, 0, false
}

// Process runs raw through the checks above and h, and returns the R-APDU.
func (f *Frontend) Process(raw []byte, h Handler) []byte {
	if len(raw) < 4 {
		f.Reset()
		return SWWrongLength.Bytes()
	}
	cls := DecodeClass(raw[0])
	if !cls.Interindustry && f.ProprietaryClass && raw[0] != 0xFF {
		cls = DecodeClass(raw[0] & 0x1F)
	}
	switch {
	case !cls.Interindustry:
		return f.fail(SWCLANotSupported)
	case cls.SecureMessaging && !f.SecureMessaging:
		return f.fail(SWSecureMessagingUnsupported)
	case cls.Channel != 0:
		return f.fail(SWLogicalChannelNotSupported)
	}
	cmd, err := ParseCommand(raw)
	if err != nil || (cmd.Extended && !f.Limits.ExtendedLength) || len(cmd.Data) > f.Limits.MaxCommandData {
		return f.fail(SWWrongLength)
	}

	// Command chaining.
	if c := f.chain; c != nil && (c.ins != cmd.INS || c.p1 != cmd.P1 || c.p2 != cmd.P2) {
		return f.fail(SWLastCommandOfChainExpected)
	}
	if cls.Chained {
		if f.Chainable == nil || !f.Chainable(cmd.INS) {
			return f.fail(SWChainingNotSupported)
		}
		f.clearPending()
		if f.chain == nil {
			f.chain = &chainState{ins: cmd.INS, p1: cmd.P1, p2: cmd.P2}
		}
		if len(f.chain.data)+len(cmd.Data) > MaxChainedData {
			return f.fail(SWNotEnoughMemory)
		}
		f.chain.data = append(f.chain.data, cmd.Data...)
		return SWOK.Bytes()
	}
	if f.chain != nil {
		cmd.Data = append(f.chain.data, cmd.Data...)
		f.chain = nil
	}

	if f.Limits.T0GetResponse && cmd.INS == 0xC0 {
		return f.getResponse(cmd)
	}
	f.clearPending()

	data, sw := h(cmd)
	if f.Limits.T0GetResponse && len(data) > 0 {
		f.pending = append([]byte(nil), data...)
		f.pendingSW, f.hasPend = sw, true
		return SWWithCount(SWBytesRemaining, len(f.pending)).Bytes()
	}
	if len(data) > f.Limits.MaxResponseData {
		return SWUnknown.Bytes()
	}
	return Respond(data, sw)
}

// fail drops the chain and pending data and answers sw.
func (f *Frontend) fail(sw SW) []byte {
	f.Reset()
	return sw.Bytes()
}

func (f *Frontend) getResponse(cmd Command) []byte {
	switch {
	case cmd.P1 != 0 || cmd.P2 != 0:
		return SWIncorrectP1P2.Bytes()
	case len(cmd.Data) != 0 || !cmd.HasLe():
		return SWWrongLength.Bytes()
	case !f.hasPend:
		return SWConditionsNotSatisfied.Bytes()
	}
	avail := len(f.pending)
	if f.Limits.StrictLe && cmd.Ne > avail && avail <= 256 && !cmd.Extended {
		return SWWithCount(SWWrongLe, avail).Bytes()
	}
	n := min(avail, cmd.Ne, f.Limits.MaxResponseData)
	chunk := f.pending[:n]
	f.pending = f.pending[n:]
	if len(f.pending) > 0 {
		return Respond(chunk, SWWithCount(SWBytesRemaining, len(f.pending)))
	}
	sw := f.pendingSW
	f.clearPending()
	return Respond(chunk, sw)
}
