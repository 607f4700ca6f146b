package kpe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"kpe-agent/apdu"
	"kpe-agent/apdu/sm"
	"kpe-agent/internal/tlv"
)

// Card data renewal (docs/card-profiles.md §2.7): a second key set per
// card, the update keys, opens an update session in which the card stages
// new contents of data groups and EF.SOD in shadow EFs and switches them
// all at once on COMMIT, as a Java Card transaction or an EN 1546
// ratification would.

// Key references of EXTERNAL AUTHENTICATE's P2 (ISO/IEC 7816-4 §7.5.1:
// b8 = 1 specific reference data, b5..b1 the key number).
const (
	KeyRefRead   byte = 0x00 // the card keys (read session), as before renewal existed
	KeyRefUpdate byte = 0x82 // the update keys (update session)
)

// Commands of the update transaction. The proprietary ones use CLA 80 and,
// under secure messaging, 8C.
const (
	CLAProprietary  byte = 0x80
	InsBeginUpdate  byte = 0x54 // BEGIN UPDATE (80/8C 54 00 00, data: EncodeBeginUpdate)
	InsCommitUpdate byte = 0x56 // COMMIT UPDATE (80/8C 56 00 00, no data)
	InsUpdateBinary byte = 0xD6 // ISO/IEC 7816-4 UPDATE BINARY, offset in P1-P2
	// UpdateStatusP1, UpdateStatusP2: GET DATA (80 CA 01 10) of the renewal
	// status, plain.
	UpdateStatusP1 byte = 0x01
	UpdateStatusP2 byte = 0x10
	// MaxUpdateEF is the largest EF a BEGIN UPDATE may announce (offsets
	// of UPDATE BINARY are 15 bits).
	MaxUpdateEF = 0x7FFF
	// BeginHeaderLen is BEGIN UPDATE's data before its EF entries:
	// update id (16), sequence (4), number of EFs (1).
	BeginHeaderLen = 16 + 4 + 1
)

// Tags of the renewal status answer: 71 { 80 sequence (4), 81 update id (16) }.
const (
	tagUpdateStatus   tlv.Tag = 0x71
	tagUpdateSequence tlv.Tag = 0x80
	tagUpdateID       tlv.Tag = 0x81
)

// Errors of the update transaction.
var (
	// ErrNoUpdateKey: the SAM holds no update key (SAM 6A88/6D00), so
	// renewal is not possible at this terminal.
	ErrNoUpdateKey = errors.New("kpe: the SAM holds no card update key")
	// ErrUpdateRefused: the card refused BEGIN UPDATE or COMMIT UPDATE
	// (sequence not newer, staged EF.SOD does not match the groups, an EF
	// not fully written, ...). The card is unchanged.
	ErrUpdateRefused = errors.New("kpe: the card refused the update")
	// ErrUpdateFormat: malformed BEGIN UPDATE data or renewal status.
	ErrUpdateFormat = errors.New("kpe: malformed update data")
	// ErrNotUpdatable: BEGIN UPDATE names an EF that renewal may not
	// replace (only DG1..DG4 and EF.SOD).
	ErrNotUpdatable = errors.New("kpe: EF not updatable")
)

// DeriveUpdateKeys computes a card's update keys from the update master
// key and its serial, as DeriveCardKeys with its own label:
// K_upd = KDF108(K_UM, "KPE update key", serial), then
// Enc = KDF108(K_upd, "KPE enc", serial), MAC = KDF108(K_upd, "KPE mac", serial).
func DeriveUpdateKeys(updateMaster []byte, serial [8]byte) (CardKeys, error) {
	kUpd, err := sm.KDF108CMAC(updateMaster, []byte("KPE update key"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	defer clear(kUpd)
	enc, err := sm.KDF108CMAC(kUpd, []byte("KPE enc"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	mac, err := sm.KDF108CMAC(kUpd, []byte("KPE mac"), serial[:], 16)
	if err != nil {
		return CardKeys{}, err
	}
	return CardKeys{Enc: enc, MAC: mac}, nil
}

// UpdatableEF reports whether renewal may replace EF fid: DG1..DG4 and
// EF.SOD.
func UpdatableEF(fid uint16) bool {
	switch fid {
	case FIDIdentity, FIDEmployment, FIDFamily, FIDBenefits, FIDSOD:
		return true
	}
	return false
}

// UpdateStatus is the card's renewal status (GET DATA 80 CA 01 10).
type UpdateStatus struct {
	Supported bool     // the card answered the renewal status (false: an older card; never renewed)
	Sequence  uint32   // sequence of the last committed update, 0 = never renewed
	LastID    [16]byte // id of the last committed update, zero = none
}

// EncodeUpdateStatus is the card's answer: 71 { 80 sequence, 81 id }.
func EncodeUpdateStatus(seq uint32, id [16]byte) []byte {
	return tlv.Encode(tlv.NewConstructed(tagUpdateStatus,
		tlv.New(tagUpdateSequence, binary.BigEndian.AppendUint32(nil, seq)),
		tlv.New(tagUpdateID, id[:])))
}

// ParseUpdateStatus parses the renewal status answer strictly (one 71
// template with exactly a 4-byte 80 and a 16-byte 81); anything else is an
// error wrapping ErrUpdateFormat.
func ParseUpdateStatus(b []byte) (UpdateStatus, error) {
	t, err := tlv.ParseOne(b)
	if err != nil {
		return UpdateStatus{}, fmt.Errorf("%w: renewal status: %w", ErrUpdateFormat, err)
	}
	if t.Tag != tagUpdateStatus || len(t.Children) != 2 {
		return UpdateStatus{}, fmt.Errorf("%w: renewal status: want 71 { 80 81 }", ErrUpdateFormat)
	}
	seq, ok1 := t.Child(tagUpdateSequence)
	id, ok2 := t.Child(tagUpdateID)
	if !ok1 || !ok2 || len(seq.Value) != 4 || len(id.Value) != 16 {
		return UpdateStatus{}, fmt.Errorf("%w: renewal status: want 80 (4 bytes) and 81 (16 bytes)", ErrUpdateFormat)
	}
	return UpdateStatus{Supported: true, Sequence: binary.BigEndian.Uint32(seq.Value), LastID: [16]byte(id.Value)}, nil
}

// StagedEF is one EF of BEGIN UPDATE: its identifier and new size.
type StagedEF struct {
	FID  uint16
	Size int
}

// BeginUpdate is BEGIN UPDATE's data: update id (16) ‖ sequence (4,
// big-endian) ‖ n (1) ‖ n × (FID (2) ‖ new size (2)).
type BeginUpdate struct {
	ID       [16]byte
	Sequence uint32
	EFs      []StagedEF
}

// Encode returns the command data.
func (b BeginUpdate) Encode() []byte {
	out := make([]byte, 0, BeginHeaderLen+4*len(b.EFs))
	out = append(out, b.ID[:]...)
	out = binary.BigEndian.AppendUint32(out, b.Sequence)
	out = append(out, byte(len(b.EFs)))
	for _, e := range b.EFs {
		out = binary.BigEndian.AppendUint16(out, e.FID)
		out = binary.BigEndian.AppendUint16(out, uint16(e.Size))
	}
	return out
}

// maxStagedEFs: DG1..DG4 and EF.SOD.
const maxStagedEFs = 5

// ParseBeginUpdate parses BEGIN UPDATE's data strictly: 1..5 entries,
// exact length, sizes 1..MaxUpdateEF, no EF twice, EF.SOD among them
// (errors wrap ErrUpdateFormat); an EF renewal may not replace gives an
// error wrapping ErrNotUpdatable.
func ParseBeginUpdate(data []byte) (BeginUpdate, error) {
	if len(data) < BeginHeaderLen {
		return BeginUpdate{}, fmt.Errorf("%w: BEGIN UPDATE data of %d bytes", ErrUpdateFormat, len(data))
	}
	var b BeginUpdate
	b.ID = [16]byte(data[:16])
	b.Sequence = binary.BigEndian.Uint32(data[16:20])
	n := int(data[20])
	if n < 1 || n > maxStagedEFs || len(data) != BeginHeaderLen+4*n {
		return BeginUpdate{}, fmt.Errorf("%w: BEGIN UPDATE with %d EFs in %d bytes", ErrUpdateFormat, n, len(data))
	}
	sod := false
	for i := range n {
		e := data[BeginHeaderLen+4*i:]
		ef := StagedEF{FID: binary.BigEndian.Uint16(e), Size: int(binary.BigEndian.Uint16(e[2:]))}
		if ef.Size < 1 || ef.Size > MaxUpdateEF {
			return BeginUpdate{}, fmt.Errorf("%w: EF %04X of %d bytes", ErrUpdateFormat, ef.FID, ef.Size)
		}
		if slices.ContainsFunc(b.EFs, func(o StagedEF) bool { return o.FID == ef.FID }) {
			return BeginUpdate{}, fmt.Errorf("%w: EF %04X twice", ErrUpdateFormat, ef.FID)
		}
		sod = sod || ef.FID == FIDSOD
		b.EFs = append(b.EFs, ef)
	}
	for _, ef := range b.EFs {
		if !UpdatableEF(ef.FID) {
			return BeginUpdate{}, fmt.Errorf("%w: EF %04X", ErrNotUpdatable, ef.FID)
		}
	}
	if !sod {
		return BeginUpdate{}, fmt.Errorf("%w: EF.SOD not in the update", ErrUpdateFormat)
	}
	return b, nil
}

func updateStatusCommand() apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: apdu.InsGetData, P1: UpdateStatusP1, P2: UpdateStatusP2, Ne: apdu.MaxShortNe}
}

func externalAuthenticateCommand(keyRef byte, ext []byte) apdu.Command {
	return apdu.Command{CLA: apdu.CLAInterindustry, INS: apdu.InsExternalAuthenticate, P2: keyRef, Data: ext, Ne: AuthDataLen}
}

func beginUpdateCommand(b BeginUpdate) apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: InsBeginUpdate, Data: b.Encode()}
}

func updateBinaryCommand(off int, data []byte) apdu.Command {
	return apdu.Command{CLA: apdu.CLAInterindustry, INS: InsUpdateBinary, P1: byte(off >> 8), P2: byte(off), Data: data}
}

func commitUpdateCommand() apdu.Command {
	return apdu.Command{CLA: CLAProprietary, INS: InsCommitUpdate}
}

// ReadUpdateStatus selects the application aid (nil: DefaultAID) and reads
// its renewal status in plain. The status is optional: a card that answers
// GET DATA with any status word other than 9000 (an older card: 6A88,
// 6D00, 6A86, 6A82, 6E00, or anything else), or with an answer that does
// not parse, gives Supported false and no error, so a read never fails
// for it; only transport errors (a card removed, a reset) are returned.
func ReadUpdateStatus(ctx context.Context, t apdu.Transmitter, aid []byte) (UpdateStatus, error) {
	if aid == nil {
		aid = DefaultAID
	}
	c := apdu.NewClient(t, apdu.Limits{})
	if err := selectApplication(ctx, c, aid); err != nil {
		return UpdateStatus{}, err
	}
	return readUpdateStatus(ctx, c)
}

func readUpdateStatus(ctx context.Context, c *apdu.Client) (UpdateStatus, error) {
	b, err := c.Send(ctx, updateStatusCommand())
	var se *apdu.StatusError
	if errors.As(err, &se) {
		return UpdateStatus{}, nil
	}
	if err != nil {
		return UpdateStatus{}, fmt.Errorf("kpe: renewal status: %w", err)
	}
	st, err := ParseUpdateStatus(b)
	if err != nil {
		return UpdateStatus{}, nil // not a status this terminal can use: not renewable here
	}
	return st, nil
}

// Update is one renewal to write.
type Update struct {
	ID       [16]byte
	Sequence uint32
	Groups   map[int][]byte // changed data groups, DG number → new EF content (DG1..DG4 only)
	SOD      []byte         // the new EF.SOD
}

// UpdateAuthenticator is the SAM with the update key (sam.SAM and
// SoftwareSAM implement it).
type UpdateAuthenticator interface {
	BeginUpdateAuth(ctx context.Context, serial [8]byte, rndIC []byte) (ext []byte, finish func(ctx context.Context, resp []byte) (*sm.Session, error), err error)
}

// BeginUpdateAuth implements UpdateAuthenticator with the update master
// in memory (tests and demos only); without one it returns ErrNoUpdateKey.
func (s SoftwareSAM) BeginUpdateAuth(_ context.Context, serial [8]byte, rndIC []byte) ([]byte, func(context.Context, []byte) (*sm.Session, error), error) {
	if len(s.UpdateMaster) == 0 {
		return nil, nil, ErrNoUpdateKey
	}
	keys, err := DeriveUpdateKeys(s.UpdateMaster, serial)
	if err != nil {
		return nil, nil, err
	}
	return s.begin(keys, rndIC)
}

// WriteStep is a step of WriteUpdate.
type WriteStep int

// Steps of WriteUpdate, in order.
const (
	StepAuthenticated WriteStep = iota + 1 // update session open (nothing changed yet)
	StepBegun                              // BEGIN UPDATE accepted (staging allocated; card data unchanged)
	StepGroupWritten                       // one changed group staged (OnStep's int: its DG)
	StepCommitted                          // COMMIT UPDATE answered 9000: the card holds the new data
)

// String returns "authenticated", "begun", "group written" or "committed".
func (s WriteStep) String() string {
	switch s {
	case StepAuthenticated:
		return "authenticated"
	case StepBegun:
		return "begun"
	case StepGroupWritten:
		return "group written"
	case StepCommitted:
		return "committed"
	}
	return fmt.Sprintf("WriteStep(%d)", int(s))
}

// WriteOptions tune WriteUpdate.
type WriteOptions struct {
	AID    []byte               // default DefaultAID
	OnStep func(WriteStep, int) // called after each step (int: the DG for StepGroupWritten, else 0)
}

// UpdateError is WriteUpdate's error: Step is the step that was being
// attempted (not reached) and Err the cause (a status error, wrapped with
// ErrUpdateRefused when the card refused BEGIN or COMMIT; a transport error
// such as apdu.ErrCardRemoved; ErrNoUpdateKey; ...). With Step
// StepCommitted and a transport error the outcome is unknown: re-read
// the card.
type UpdateError struct {
	Step WriteStep
	Err  error
}

func (e *UpdateError) Error() string { return fmt.Sprintf("kpe: update (%s): %v", e.Step, e.Err) }
func (e *UpdateError) Unwrap() error { return e.Err }

// check validates an Update before anything is sent.
func (u Update) check() error {
	if len(u.SOD) == 0 || len(u.SOD) > MaxUpdateEF {
		return fmt.Errorf("%w: EF.SOD of %d bytes", apdu.ErrInvalidCommand, len(u.SOD))
	}
	if u.Sequence == 0 {
		return fmt.Errorf("%w: update sequence 0", apdu.ErrInvalidCommand)
	}
	for dg, b := range u.Groups {
		if dg < DGIdentity || dg > DGBenefits {
			return fmt.Errorf("%w: DG%d cannot be renewed", apdu.ErrInvalidCommand, dg)
		}
		if len(b) == 0 || len(b) > MaxUpdateEF {
			return fmt.Errorf("%w: DG%d of %d bytes", apdu.ErrInvalidCommand, dg, len(b))
		}
	}
	return nil
}

// WriteUpdate selects the application, authenticates with the update key
// through sam, begins the update transaction, writes every changed group
// and the new EF.SOD, and commits. It sends nothing that changes the card
// before BEGIN and switches the card only at COMMIT. Errors are
// *UpdateError.
func WriteUpdate(ctx context.Context, t apdu.Transmitter, sam UpdateAuthenticator, serial [8]byte, u Update, o WriteOptions) error {
	if o.AID == nil {
		o.AID = DefaultAID
	}
	step := func(s WriteStep, dg int) {
		if o.OnStep != nil {
			o.OnStep(s, dg)
		}
	}
	fail := func(s WriteStep, err error) error { return &UpdateError{Step: s, Err: err} }
	if err := u.check(); err != nil {
		return fail(StepAuthenticated, err)
	}
	dgs := make([]int, 0, len(u.Groups))
	for dg := range u.Groups {
		dgs = append(dgs, dg)
	}
	slices.Sort(dgs)

	c := apdu.NewClient(t, apdu.Limits{})
	if err := selectApplication(ctx, c, o.AID); err != nil {
		return fail(StepAuthenticated, err)
	}
	sess, err := authenticateUpdate(ctx, c, sam, serial)
	if err != nil {
		return fail(StepAuthenticated, err)
	}
	step(StepAuthenticated, 0)

	sc := apdu.NewClient(sm.Transmitter(t, sess), apdu.Limits{MaxCommandData: SMMaxCommandData, MaxResponseData: SMMaxResponseData})
	begin := BeginUpdate{ID: u.ID, Sequence: u.Sequence}
	for _, dg := range dgs {
		fid, _ := GroupFID(dg)
		begin.EFs = append(begin.EFs, StagedEF{FID: fid, Size: len(u.Groups[dg])})
	}
	begin.EFs = append(begin.EFs, StagedEF{FID: FIDSOD, Size: len(u.SOD)})
	if _, err := sc.Send(ctx, beginUpdateCommand(begin)); err != nil {
		return fail(StepBegun, refused("begin update", err))
	}
	step(StepBegun, 0)

	for _, dg := range dgs {
		fid, _ := GroupFID(dg)
		if err := writeEF(ctx, sc, fid, u.Groups[dg]); err != nil {
			return fail(StepGroupWritten, fmt.Errorf("DG%d: %w", dg, err))
		}
		step(StepGroupWritten, dg)
	}
	if err := writeEF(ctx, sc, FIDSOD, u.SOD); err != nil {
		return fail(StepGroupWritten, fmt.Errorf("EF.SOD: %w", err))
	}
	if _, err := sc.Send(ctx, commitUpdateCommand()); err != nil {
		return fail(StepCommitted, refused("commit update", err))
	}
	step(StepCommitted, 0)
	return nil
}

// refused wraps a card's status error with ErrUpdateRefused; transport and
// secure-messaging failures stay as they are.
func refused(what string, err error) error {
	var se *apdu.StatusError
	if errors.As(err, &se) && !errors.Is(err, sm.ErrSecureMessaging) {
		return fmt.Errorf("%w: %s: %w", ErrUpdateRefused, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// writeEF selects fid and writes data into its shadow with UPDATE BINARY
// in chunks of SMMaxCommandData.
func writeEF(ctx context.Context, sc *apdu.Client, fid uint16, data []byte) error {
	if err := sc.SelectFIDNoResponse(ctx, fid); err != nil {
		return fmt.Errorf("select EF %04X: %w", fid, err)
	}
	for off := 0; off < len(data); off += SMMaxCommandData {
		end := min(off+SMMaxCommandData, len(data))
		if _, err := sc.Send(ctx, updateBinaryCommand(off, data[off:end])); err != nil {
			return fmt.Errorf("update binary EF %04X at %d: %w", fid, off, err)
		}
	}
	return nil
}

// authenticateUpdate opens the update session: GET CHALLENGE, the SAM's
// answer with the update key, EXTERNAL AUTHENTICATE with P2 KeyRefUpdate.
// A card that refuses the cryptogram (it holds no update key, or another
// one) gives an error wrapping ErrAuthFailed and the card's status.
func authenticateUpdate(ctx context.Context, c *apdu.Client, sam UpdateAuthenticator, serial [8]byte) (*sm.Session, error) {
	rndIC, err := c.GetChallenge(ctx, RndLen)
	if err != nil {
		return nil, fmt.Errorf("get challenge: %w", err)
	}
	ext, finish, err := sam.BeginUpdateAuth(ctx, serial, rndIC)
	if err != nil {
		return nil, fmt.Errorf("SAM: %w", err)
	}
	resp, err := c.Send(ctx, externalAuthenticateCommand(KeyRefUpdate, ext))
	var se *apdu.StatusError
	if errors.As(err, &se) {
		return nil, fmt.Errorf("%w: the card refused the update cryptogram: %w", ErrAuthFailed, err)
	}
	if err != nil {
		return nil, fmt.Errorf("external authenticate: %w", err)
	}
	return finish(ctx, resp)
}
