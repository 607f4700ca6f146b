package sam

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"kpe-agent/apdu"
	"kpe-agent/internal/tlv"
)

// The SAM profile (docs/card-profiles.md §4): its proprietary commands,
// their parameters and the formats of their data. The client in this
// package builds every command from these; the lab SAM
// (lab/cardsim/samapp) dispatches on the same constants and encodes its
// answers with the same functions.

// CLA is the proprietary class of the SAM's commands.
const CLA byte = 0x80

// Instructions of the SAM's proprietary commands.
const (
	InsActivate         byte = 0x10 // ACTIVATE (P1: ActivateTerminal or ActivateKTPel)
	InsCardAuthInit     byte = 0x20 // CARD AUTH INIT (P1: profile)
	InsCardAuthComplete byte = 0x22 // CARD AUTH COMPLETE (P1: profile)
	InsSMWrap           byte = 0x30 // SM WRAP (P1: ProfileKTPel)
	InsSMUnwrap         byte = 0x32 // SM UNWRAP (P1: ProfileKTPel)
	InsSignRecord       byte = 0x40 // SIGN RECORD
	InsGetCounter       byte = 0x42 // GET COUNTER
	InsPseudonym        byte = 0x50 // PSEUDONYM (P1: the Domain)
	InsGetData          byte = 0xCA // GET DATA (P1-P2: InfoP1, InfoP2)
)

// P1 of ACTIVATE: which activation.
const (
	ActivateTerminal byte = 0x01 // the terminal activation code
	ActivateKTPel    byte = 0x02 // the installation's two KTP-el secrets
)

// P1 of CARD AUTH INIT / COMPLETE and SM WRAP / UNWRAP: the card profile.
const (
	ProfileKPE   byte = 0x01
	ProfileKTPel byte = 0x02
	// ProfileKPEUpdate is CARD AUTH INIT/COMPLETE of a KPE update session
	// (docs/card-profiles.md §2.7): the same exchange as ProfileKPE with
	// keys derived from the card update master (kpe.DeriveUpdateKeys). A
	// SAM without an update master answers 6A88.
	ProfileKPEUpdate byte = 0x03
)

// P1-P2 of GET DATA for the SAM's information template.
const (
	InfoP1 byte = 0x01
	InfoP2 byte = 0x01
)

// Domain is what a pseudonym stands for: PSEUDONYM's P1 and the first
// byte of the input its HMAC is computed over, so that the pseudonym of
// a value in one domain is never that of the same bytes in another.
type Domain byte

// Pseudonym domains.
const (
	DomainNIK     Domain = 0x01 // a KTP-el holder's NIK (16 ASCII digits)
	DomainChipUID Domain = 0x02 // a KTP-el chip's UID
)

// String returns "nik" or "chip-uid".
func (d Domain) String() string {
	switch d {
	case DomainNIK:
		return "nik"
	case DomainChipUID:
		return "chip-uid"
	}
	return fmt.Sprintf("Domain(%d)", byte(d))
}

// Known reports whether d is one of the domains above.
func (d Domain) Known() bool { return d == DomainNIK || d == DomainChipUID }

// PseudonymOf is what PSEUDONYM computes inside a SAM whose institution
// pseudonym key is key: HMAC-SHA-256(key, domain ‖ value). The agent
// computes it on the host only in the explicit file fallback
// (ktpel.pseudonym: file); the lab SAM computes it with its key.
func PseudonymOf(key []byte, d Domain, value []byte) [PseudonymLen]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte{byte(d)})
	m.Write(value)
	return [PseudonymLen]byte(m.Sum(nil))
}

// FIDCert is the EF holding the terminal certificate (DER), read with
// READ BINARY after selecting it by file identifier.
const FIDCert uint16 = 0x0201

// Lengths of the SAM's values.
const (
	SerialLen    = 8                        // SAM serial
	CounterLen   = 4                        // signature counter, big-endian
	DigestLen    = sha256.Size              // SIGN RECORD's input
	scalarLen    = 32                       // ECDSA P-256 r and s
	SignatureLen = CounterLen + 2*scalarLen // SIGN RECORD's answer: 68 bytes
	PseudonymLen = sha256.Size              // PSEUDONYM's answer: 32 bytes
	// MaxPseudonymInput bounds PSEUDONYM's value (the command data).
	MaxPseudonymInput = 64
	// MinPseudonymKeyLen is the shortest institution pseudonym key: in a
	// SAM, or in the agent's explicit key-file fallback.
	MinPseudonymKeyLen = 32
	responseNe         = apdu.MaxShortNe // Le 00 of the commands that answer data
)

// Tags of GET DATA's information template: 70 { 80 serial, 81 state,
// 82 tries left, 83 signature counter }.
const (
	tagInfo        tlv.Tag = 0x70
	tagInfoSerial  tlv.Tag = 0x80
	tagInfoState   tlv.Tag = 0x81
	tagInfoTries   tlv.Tag = 0x82
	tagInfoCounter tlv.Tag = 0x83
)

// Tags of the two data objects of CARD AUTH INIT (80 card serial or UID,
// 81 RND.IC) and of ACTIVATE P1 02 (80 secret 1, 81 secret 2).
const (
	tagFirst  tlv.Tag = 0x80
	tagSecond tlv.Tag = 0x81
)

// EncodePair returns the command data 80 { first } 81 { second } of CARD
// AUTH INIT (card serial or UID, RND.IC) and of ACTIVATE P1 02 (the two
// secrets).
func EncodePair(first, second []byte) []byte {
	return tlv.Encode(tlv.New(tagFirst, first), tlv.New(tagSecond, second))
}

// ParsePair reads command data of the form 80 { first } 81 { second } (in
// any order, other data objects ignored); a malformed field or a missing
// object gives an error wrapping ErrFormat.
func ParsePair(data []byte) (first, second []byte, err error) {
	dos, err := tlv.Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	a, ok1 := tlv.Find(dos, tagFirst)
	b, ok2 := tlv.Find(dos, tagSecond)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("%w: want data objects 80 and 81", ErrFormat)
	}
	return a.Value, b.Value, nil
}

func getInfoCommand() apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsGetData, P1: InfoP1, P2: InfoP2, Ne: responseNe}
}

func activateCommand(which byte, data []byte) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsActivate, P1: which, Data: data}
}

func signRecordCommand(digest [DigestLen]byte) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsSignRecord, Data: digest[:], Ne: responseNe}
}

func getCounterCommand() apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsGetCounter, Ne: CounterLen}
}

func cardAuthInitCommand(profile byte, id, rndIC []byte) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsCardAuthInit, P1: profile, Data: EncodePair(id, rndIC), Ne: responseNe}
}

// cardAuthCompleteCommand: for KPE the SAM answers with the session keys;
// for KTP-el it keeps them and answers nothing.
func cardAuthCompleteCommand(profile byte, resp []byte) apdu.Command {
	cmd := apdu.Command{CLA: CLA, INS: InsCardAuthComplete, P1: profile, Data: resp}
	if profile == ProfileKPE || profile == ProfileKPEUpdate {
		cmd.Ne = responseNe
	}
	return cmd
}

// smCommand is SM WRAP or SM UNWRAP of the KTP-el session.
func smCommand(ins byte, data []byte) apdu.Command {
	return apdu.Command{CLA: CLA, INS: ins, P1: ProfileKTPel, Data: data, Ne: responseNe}
}

// pseudonymCommand is PSEUDONYM: P1 the domain, data the value, answer
// the 32-byte pseudonym.
func pseudonymCommand(d Domain, value []byte) apdu.Command {
	return apdu.Command{CLA: CLA, INS: InsPseudonym, P1: byte(d), Data: value, Ne: PseudonymLen}
}
