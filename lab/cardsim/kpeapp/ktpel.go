package kpeapp

import (
	"crypto"
	"crypto/x509"
	"fmt"

	"kpe-agent/apdu/ktpel"
	"kpe-agent/internal/sod"
)

// ATRs of the lab's cards (profile parameters; docs/card-profiles.md §5).
// KPE and SAM are contact T=1 ATRs whose historical bytes carry a
// pre-issuing data object (compact-TLV tag 6) naming the profile; the
// KTP-el ATR is the one a PC/SC contactless reader builds for an ISO 14443-4
// chip (PC/SC part 3: 3B 8n 80 01 and the chip's answer bytes).
// The SAM's is samapp.ATRSAM.
var (
	ATRKPE   = []byte{0x3B, 0x8D, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0x94, 0x01, 0xA0, 0x64, 0x4B, 0x50, 0x45, 0x01, 0x82, 0x90, 0x00, 0x69}
	ATRKTPel = []byte{0x3B, 0x88, 0x80, 0x01, 0x4B, 0x54, 0x50, 0x45, 0x4C, 0x00, 0x77, 0x81, 0xB9}
)

// KTPProfile is the content of one KTP-el chip before personalisation.
type KTPProfile struct {
	UID          []byte
	Header       ktpel.Header
	Biodata      ktpel.Biodata
	Photo        []byte // JPEG
	Signature    []byte // signature image
	Fingerprints [2]ktpel.Fingerprint
}

// PersonaliseKTPel encodes the EFs under DF 7F0A, signs them with the
// Dukcapil document signer (EF 6FF6) and derives the chip keys from the
// KTP-el master key and the UID.
func PersonaliseKTPel(p KTPProfile, master []byte, signer crypto.Signer, cert *x509.Certificate) (Config, error) {
	files := map[uint16][]byte{
		ktpel.FIDHeader:    p.Header.Encode(),
		ktpel.FIDBiodata:   p.Biodata.Encode(),
		ktpel.FIDPhoto:     p.Photo,
		ktpel.FIDSignature: p.Signature,
		ktpel.FIDFinger1:   p.Fingerprints[0].Encode(),
		ktpel.FIDFinger2:   p.Fingerprints[1].Encode(),
	}
	groups := map[int][]byte{}
	for dg := ktpel.DGBiodata; dg <= ktpel.DGFinger2; dg++ {
		fid, _ := ktpel.GroupFID(dg)
		if len(files[fid]) == 0 {
			return Config{}, fmt.Errorf("kpeapp: KTP-el EF %04X is empty", fid)
		}
		groups[dg] = files[fid]
	}
	so, err := sod.Sign(groups, signer, cert)
	if err != nil {
		return Config{}, fmt.Errorf("kpeapp: sign: %w", err)
	}
	files[ktpel.FIDSOD] = so
	keys, err := ktpel.DeriveCardKeys(master, p.UID)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Name: fmt.Sprintf("KTP-el %X", p.UID), ATR: ATRKTPel, DF: ktpel.FIDDF, UID: p.UID,
		Suite: ktpel.Suite, Keys: keys, Files: files,
		Plain: PlainSet(ktpel.PlainEFs()),
	}, nil
}
