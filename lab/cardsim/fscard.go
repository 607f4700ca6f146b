package cardsim

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Identifiers and sizes of the file system.
const (
	FIDMF         = 0x3F00
	FIDATRInfo    = 0x2F01 // EF.ATR/INFO under the MF, generated from the limits
	MaxEFSize     = 65536
	maxAIDLen     = 16
	challengeSize = 8 // natural GET CHALLENGE length (StrictLe answers 6C08 above it)
)

// FSOptions configures a FileSystemCard.
type FSOptions struct {
	// Name is shown in slot status and logs.
	Name string
	// ATR; nil means DefaultATR.
	ATR []byte
	// MaxCommandData: largest Nc per C-APDU (0 → 255).
	MaxCommandData int
	// MaxResponseData: largest response data field (0 → 256). Up to 256
	// for short-only cards, up to 65533 with ExtendedLength.
	MaxResponseData int
	// ExtendedLength: accept extended-length APDUs.
	ExtendedLength bool
	// T0GetResponse: answer data with 61xx + GET RESPONSE.
	T0GetResponse bool
	// StrictLe: answer 6Cxx when Le asks for more than is available (GET
	// CHALLENGE above 8 bytes, GET DATA, READ BINARY past the end, GET
	// RESPONSE), for short APDUs and counts up to 256.
	StrictLe bool
	// Rand is the source for GET CHALLENGE; nil means crypto/rand.
	Rand io.Reader
}

// FileSystemCard is a generic ISO/IEC 7816-4 card with a hierarchical file
// system of DFs and transparent EFs and a small data-object store.
//
// Commands: SELECT (A4: P1 00/02/04, P2 00/04/0C), READ BINARY (B0, B1),
// GET CHALLENGE (84), PUT DATA (DA, chainable) and GET DATA (CA) on a store
// keyed by P1P2, GET RESPONSE (C0) when T0GetResponse is set. A card with
// ExtendedLength announces its buffer in EF.ATR/INFO (2F01 under the MF):
// 7F66 { 02 max command APDU size, 02 max response APDU size }, whole-APDU
// sizes as ISO/IEC 7816-4 defines them. A short-length card has no 2F01
// unless its image defines one.
//
// SELECT returns the FCP for P2 00/04 even when Le is absent (as most T=1
// cards do); READ BINARY, GET CHALLENGE and GET DATA require Le.
type FileSystemCard struct {
	mu      sync.Mutex
	name    string
	atr     []byte
	limits  Limits
	rand    io.Reader
	fe      Frontend
	mf      *fsNode
	curDF   *fsNode
	curEF   *fsNode
	objects map[uint16][]byte
}

type fsNode struct {
	fid       uint16
	df        bool
	aid       []byte
	parent    *fsNode
	children  []*fsNode
	data      []byte
	sfi       int // -1: none; 0: derived from the FID; 1..30: explicit
	generated bool
}

func (n *fsNode) child(fid uint16) *fsNode {
	for _, c := range n.children {
		if c.fid == fid {
			return c
		}
	}
	return nil
}

func (n *fsNode) path() string {
	if n.parent == nil {
		return fmt.Sprintf("%04X", n.fid)
	}
	return n.parent.path() + fmt.Sprintf("/%04X", n.fid)
}

// NewFileSystemCard returns a card holding only the MF and EF.ATR/INFO.
func NewFileSystemCard(opts FSOptions) (*FileSystemCard, error) {
	lim := Limits{
		MaxCommandData:  opts.MaxCommandData,
		MaxResponseData: opts.MaxResponseData,
		ExtendedLength:  opts.ExtendedLength,
		T0GetResponse:   opts.T0GetResponse,
		StrictLe:        opts.StrictLe,
	}.WithDefaults()
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	atr := opts.ATR
	if atr == nil {
		atr = DefaultATR
	}
	if err := ValidateATR(atr); err != nil {
		return nil, err
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	mf := &fsNode{fid: FIDMF, df: true, sfi: -1}
	c := &FileSystemCard{
		name:    opts.Name,
		atr:     bytes.Clone(atr),
		limits:  lim,
		rand:    r,
		mf:      mf,
		objects: map[uint16][]byte{},
	}
	c.fe = Frontend{Limits: lim, Chainable: func(ins byte) bool { return ins == 0xDA }}
	if lim.ExtendedLength {
		// ISO/IEC 7816-4 extended length information: the largest whole
		// command and response APDUs, i.e. data plus header, extended Lc and
		// Le (4+3+2) for commands and plus SW1-SW2 for responses.
		info := AppendTLV(nil, 0x02, MinimalUint(lim.MaxCommandData+9))
		info = AppendTLV(info, 0x02, MinimalUint(lim.MaxResponseData+2))
		mf.children = append(mf.children, &fsNode{
			fid: FIDATRInfo, parent: mf, data: AppendTLV(nil, 0x7F66, info), generated: true,
		})
	}
	c.resetState()
	return c, nil
}

// Name implements Named.
func (c *FileSystemCard) Name() string { return c.name }

// Limits returns the card's transport limits.
func (c *FileSystemCard) Limits() Limits { return c.limits }

// ATR implements Card.
func (c *FileSystemCard) ATR() []byte { return bytes.Clone(c.atr) }

// PowerOn implements Card: the selection returns to the MF.
func (c *FileSystemCard) PowerOn() { c.lockedReset() }

// PowerOff implements Card.
func (c *FileSystemCard) PowerOff() { c.lockedReset() }

// Reset implements Card.
func (c *FileSystemCard) Reset() { c.lockedReset() }

func (c *FileSystemCard) lockedReset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetState()
}

func (c *FileSystemCard) resetState() {
	c.curDF, c.curEF = c.mf, nil
	c.fe.Reset()
}

// ParseFSPath parses "3F00/5000/5001" into FIDs. The first element must be
// the MF; FIDs 3F00 (except first), 3FFF and FFFF are reserved.
func ParseFSPath(path string) ([]uint16, error) {
	parts := strings.Split(path, "/")
	fids := make([]uint16, 0, len(parts))
	for i, p := range parts {
		if len(p) != 4 {
			return nil, fmt.Errorf("path %q: element %q is not 4 hex digits", path, p)
		}
		v, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("path %q: element %q is not 4 hex digits", path, p)
		}
		fid := uint16(v)
		switch {
		case i == 0 && fid != FIDMF:
			return nil, fmt.Errorf("path %q does not start at the MF 3F00", path)
		case i > 0 && (fid == FIDMF || fid == 0x3FFF || fid == 0xFFFF):
			return nil, fmt.Errorf("path %q: FID %04X is reserved", path, fid)
		}
		fids = append(fids, fid)
	}
	return fids, nil
}

// ErrDuplicateFID is returned when a DF already holds a file with that FID.
var ErrDuplicateFID = errors.New("duplicate FID")

// parentFor resolves the parent DF of path and the new file's FID.
func (c *FileSystemCard) parentFor(path string) (*fsNode, uint16, error) {
	fids, err := ParseFSPath(path)
	if err != nil {
		return nil, 0, err
	}
	if len(fids) == 1 {
		return nil, FIDMF, nil
	}
	n := c.mf
	for _, fid := range fids[1 : len(fids)-1] {
		ch := n.child(fid)
		if ch == nil {
			return nil, 0, fmt.Errorf("path %q: missing parent %s/%04X", path, n.path(), fid)
		}
		if !ch.df {
			return nil, 0, fmt.Errorf("path %q: parent %s is an EF", path, ch.path())
		}
		n = ch
	}
	return n, fids[len(fids)-1], nil
}

// AddDF adds a DF at path (e.g. "3F00/5000") with an optional DF name
// (AID, 1..16 bytes, unique on the card). AddDF("3F00", aid) names the MF.
func (c *FileSystemCard) AddDF(path string, aid []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(aid) > maxAIDLen {
		return fmt.Errorf("DF %s: AID of %d bytes (max %d)", path, len(aid), maxAIDLen)
	}
	if len(aid) > 0 && c.findAID(c.mf, aid) != nil {
		return fmt.Errorf("DF %s: duplicate AID %X", path, aid)
	}
	parent, fid, err := c.parentFor(path)
	if err != nil {
		return err
	}
	if parent == nil { // the MF itself
		if c.mf.aid != nil {
			return fmt.Errorf("DF %s: MF already has a DF name", path)
		}
		c.mf.aid = bytes.Clone(aid)
		return nil
	}
	if parent.child(fid) != nil {
		return fmt.Errorf("DF %s: %w %04X in %s", path, ErrDuplicateFID, fid, parent.path())
	}
	n := &fsNode{fid: fid, df: true, aid: bytes.Clone(aid), parent: parent, sfi: -1}
	if len(aid) == 0 {
		n.aid = nil
	}
	parent.children = append(parent.children, n)
	return nil
}

// AddEF adds a transparent EF at path with a copy of content (at most
// 65536 bytes). sfi: 0 derives the short EF identifier from FID bits 5-1
// (when 1..30 and not taken by another EF of the DF), -1 disables it, 1..30
// sets it explicitly. Adding 3F00/2F01 replaces the generated EF.ATR/INFO.
func (c *FileSystemCard) AddEF(path string, content []byte, sfi int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(content) > MaxEFSize {
		return fmt.Errorf("EF %s: %d bytes exceed the maximum of %d", path, len(content), MaxEFSize)
	}
	if sfi < -1 || sfi > 30 {
		return fmt.Errorf("EF %s: SFI %d out of range 1..30 (0 = derived, -1 = none)", path, sfi)
	}
	parent, fid, err := c.parentFor(path)
	if err != nil {
		return err
	}
	if parent == nil {
		return fmt.Errorf("EF %s: the MF is a DF", path)
	}
	n := &fsNode{fid: fid, parent: parent, data: bytes.Clone(content), sfi: sfi}
	if n.data == nil {
		n.data = []byte{}
	}
	if sfi > 0 {
		for _, ch := range parent.children {
			if !ch.df && ch.sfi == sfi && ch.fid != fid {
				return fmt.Errorf("EF %s: duplicate SFI %d in %s", path, sfi, parent.path())
			}
		}
	}
	for i, ch := range parent.children {
		if ch.fid == fid {
			if ch.generated {
				parent.children[i] = n
				return nil
			}
			return fmt.Errorf("EF %s: %w %04X in %s", path, ErrDuplicateFID, fid, parent.path())
		}
	}
	parent.children = append(parent.children, n)
	return nil
}

func (c *FileSystemCard) findAID(n *fsNode, aid []byte) *fsNode {
	if n.df && n.aid != nil && bytes.Equal(n.aid, aid) {
		return n
	}
	for _, ch := range n.children {
		if f := c.findAID(ch, aid); f != nil {
			return f
		}
	}
	return nil
}

// findSFI returns the EF of df with short identifier sfi: an explicit SFI
// wins over one derived from a FID; among derived ones the first added wins.
func findSFI(df *fsNode, sfi int) *fsNode {
	for _, ch := range df.children {
		if !ch.df && ch.sfi == sfi {
			return ch
		}
	}
	for _, ch := range df.children {
		if !ch.df && ch.sfi == 0 && int(ch.fid&0x1F) == sfi {
			return ch
		}
	}
	return nil
}

// Process implements Card.
func (c *FileSystemCard) Process(cmd []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fe.Process(cmd, c.handle)
}

func (c *FileSystemCard) handle(cmd Command) ([]byte, SW) {
	switch cmd.INS {
	case 0xA4:
		return c.selectFile(cmd)
	case 0xB0:
		return c.readBinary(cmd)
	case 0xB1:
		return c.readBinaryOdd(cmd)
	case 0x84:
		return c.getChallenge(cmd)
	case 0xDA:
		return c.putData(cmd)
	case 0xCA:
		return c.getData(cmd)
	}
	return nil, SWINSNotSupported
}

func (c *FileSystemCard) selectFile(cmd Command) ([]byte, SW) {
	if cmd.P2 != 0x00 && cmd.P2 != 0x04 && cmd.P2 != 0x0C {
		return nil, SWIncorrectP1P2
	}
	var target *fsNode
	switch cmd.P1 {
	case 0x00:
		switch len(cmd.Data) {
		case 0:
			target = c.mf
		case 2:
			fid := uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
			switch {
			case fid == FIDMF:
				target = c.mf
			case c.curDF.child(fid) != nil:
				target = c.curDF.child(fid)
			case c.curDF.parent != nil && c.curDF.parent.fid == fid:
				target = c.curDF.parent
			}
		default:
			return nil, SWWrongLength
		}
	case 0x02:
		if len(cmd.Data) != 2 {
			return nil, SWWrongLength
		}
		fid := uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
		if ch := c.curDF.child(fid); ch != nil && !ch.df {
			target = ch
		}
	case 0x04:
		if len(cmd.Data) < 1 || len(cmd.Data) > maxAIDLen {
			return nil, SWWrongLength
		}
		target = c.findAID(c.mf, cmd.Data)
	default:
		return nil, SWIncorrectP1P2
	}
	if target == nil {
		return nil, SWFileNotFound
	}
	if target.df {
		c.curDF, c.curEF = target, nil
	} else {
		c.curDF, c.curEF = target.parent, target
	}
	if cmd.P2 == 0x0C {
		return nil, SWOK
	}
	fcp := buildFCP(target)
	n := len(fcp)
	if cmd.HasLe() {
		n = min(n, cmd.Ne)
	}
	n = min(n, c.limits.MaxResponseData)
	return fcp[:n], SWOK
}

// buildFCP returns 62 { [80 size] 82 descriptor 83 FID [84 DF name] }.
func buildFCP(n *fsNode) []byte {
	var body []byte
	if !n.df {
		size := MinimalUint(len(n.data))
		if len(size) < 2 {
			size = append([]byte{0}, size...)
		}
		body = AppendTLV(body, 0x80, size)
		body = AppendTLV(body, 0x82, []byte{0x01}) // working EF, transparent
	} else {
		body = AppendTLV(body, 0x82, []byte{0x38}) // DF
	}
	body = AppendTLV(body, 0x83, []byte{byte(n.fid >> 8), byte(n.fid)})
	if n.df && n.aid != nil {
		body = AppendTLV(body, 0x84, n.aid)
	}
	return AppendTLV(nil, 0x62, body)
}

func (c *FileSystemCard) readBinary(cmd Command) ([]byte, SW) {
	if len(cmd.Data) != 0 || !cmd.HasLe() {
		return nil, SWWrongLength
	}
	ef, off := c.curEF, int(cmd.P1P2())
	if cmd.P1&0x80 != 0 {
		sfi := int(cmd.P1 & 0x1F)
		if cmd.P1&0x60 != 0 || sfi == 0 || sfi == 31 {
			return nil, SWIncorrectP1P2
		}
		if ef = findSFI(c.curDF, sfi); ef == nil {
			return nil, SWFileNotFound
		}
		c.curEF, off = ef, int(cmd.P2)
	}
	if ef == nil {
		return nil, SWCommandNotAllowedNoEF
	}
	return c.read(cmd, ef, off, false)
}

func (c *FileSystemCard) readBinaryOdd(cmd Command) ([]byte, SW) {
	if !cmd.HasLe() {
		return nil, SWWrongLength
	}
	tag, val, rest, err := ParseTLV(cmd.Data)
	if err != nil || tag != 0x54 || len(rest) != 0 || len(val) < 1 || len(val) > 3 {
		return nil, SWWrongData
	}
	off := 0
	for _, b := range val {
		off = off<<8 | int(b)
	}
	var ef *fsNode
	switch id := cmd.P1P2(); {
	case id == 0:
		ef = c.curEF
		if ef == nil {
			return nil, SWCommandNotAllowedNoEF
		}
	case id < 0x1F:
		ef = findSFI(c.curDF, int(id))
	case id == 0x1F:
		return nil, SWIncorrectP1P2
	default:
		if ch := c.curDF.child(id); ch != nil && !ch.df {
			ef = ch
		}
	}
	if ef == nil {
		return nil, SWFileNotFound
	}
	c.curEF = ef
	return c.read(cmd, ef, off, true)
}

// read returns up to min(Ne, MaxResponseData) bytes of ef from off; with
// wrap the content is returned as 53 <len> <content>, the wrapper counting
// inside the limit.
func (c *FileSystemCard) read(cmd Command, ef *fsNode, off int, wrap bool) ([]byte, SW) {
	if off >= len(ef.data) {
		return nil, SWWrongP1P2
	}
	overhead := func(n int) int {
		if wrap {
			return 1 + BERLengthSize(n)
		}
		return 0
	}
	avail := len(ef.data) - off
	limit := min(cmd.Ne, c.limits.MaxResponseData)
	n := min(avail, limit)
	for n > 0 && n+overhead(n) > limit {
		n--
	}
	if n == 0 {
		return nil, SWWrongLength // Le too small even for the 53 wrapper
	}
	total := n + overhead(n)
	eof := n == avail && total < cmd.Ne
	if eof && c.limits.StrictLe && !cmd.Extended && total <= 256 {
		return nil, SWWithCount(SWWrongLe, total)
	}
	content := ef.data[off : off+n]
	out := content
	if wrap {
		out = AppendTLV(make([]byte, 0, total), 0x53, content)
	}
	if eof {
		return out, SWEndOfFile
	}
	return out, SWOK
}

func (c *FileSystemCard) getChallenge(cmd Command) ([]byte, SW) {
	switch {
	case cmd.P1 != 0 || cmd.P2 != 0:
		return nil, SWIncorrectP1P2
	case len(cmd.Data) != 0 || !cmd.HasLe() || cmd.Ne > 256:
		return nil, SWWrongLength
	case c.limits.StrictLe && cmd.Ne > challengeSize:
		return nil, SWWithCount(SWWrongLe, challengeSize)
	}
	out := make([]byte, min(cmd.Ne, c.limits.MaxResponseData))
	if _, err := io.ReadFull(c.rand, out); err != nil {
		return nil, SWUnknown
	}
	return out, SWOK
}

func (c *FileSystemCard) putData(cmd Command) ([]byte, SW) {
	c.objects[cmd.P1P2()] = bytes.Clone(cmd.Data)
	return nil, SWOK
}

func (c *FileSystemCard) getData(cmd Command) ([]byte, SW) {
	if len(cmd.Data) != 0 || !cmd.HasLe() {
		return nil, SWWrongLength
	}
	v, ok := c.objects[cmd.P1P2()]
	if !ok {
		return nil, SWReferencedDataNotFound
	}
	if c.limits.StrictLe && len(v) < cmd.Ne && !cmd.Extended && len(v) > 0 {
		return nil, SWWithCount(SWWrongLe, len(v))
	}
	n := min(len(v), cmd.Ne, c.limits.MaxResponseData)
	return bytes.Clone(v[:n]), SWOK
}
