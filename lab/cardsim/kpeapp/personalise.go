package kpeapp

import (
	"crypto"
	"crypto/x509"
	"fmt"

	"kpe-agent/apdu/kpe"
	"kpe-agent/internal/sod"
)

// Profile is the content of one card before personalisation.
type Profile struct {
	Info       kpe.CardInfo
	Identity   kpe.Identity
	Employment kpe.Employment
	Family     kpe.Family
	Benefits   kpe.Benefits
	Photo      []byte // JPEG; omitted when empty
	BIT        []byte // biometric information template group; omitted when empty
}

// Personalise encodes the data groups, signs them with the document signer
// (EF.SOD) and derives the card keys from the master key, as an issuer's
// personalisation system would. PersonaliseWithUpdate also gives the card
// its update keys.
func Personalise(p Profile, master []byte, signer crypto.Signer, cert *x509.Certificate) (Config, error) {
	return PersonaliseWithUpdate(p, master, nil, signer, cert)
}

// PersonaliseWithUpdate is Personalise that also derives the card's update
// keys (docs/card-profiles.md §2.7) from updateMaster; nil: none.
func PersonaliseWithUpdate(p Profile, master, updateMaster []byte, signer crypto.Signer, cert *x509.Certificate) (Config, error) {
	files := map[uint16][]byte{
		kpe.FIDCardInfo:   p.Info.Encode(),
		kpe.FIDIdentity:   p.Identity.Encode(),
		kpe.FIDEmployment: p.Employment.Encode(),
		kpe.FIDFamily:     p.Family.Encode(),
		kpe.FIDBenefits:   p.Benefits.Encode(),
	}
	if len(p.Photo) > 0 {
		files[kpe.FIDPhoto] = p.Photo
	}
	if len(p.BIT) > 0 {
		files[kpe.FIDBIT] = p.BIT
	}
	// The security object covers every data group on the card.
	groups := map[int][]byte{}
	for dg := kpe.DGIdentity; dg <= kpe.DGBIT; dg++ {
		if fid, _ := kpe.GroupFID(dg); files[fid] != nil {
			groups[dg] = files[fid]
		}
	}
	so, err := sod.Sign(groups, signer, cert)
	if err != nil {
		return Config{}, fmt.Errorf("kpeapp: sign: %w", err)
	}
	files[kpe.FIDSOD] = so
	keys, err := kpe.DeriveCardKeys(master, p.Info.Serial)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Name: fmt.Sprintf("KPE %X", p.Info.Serial), Keys: keys, Files: files, MaxResponse: p.Info.MaxResponse}
	if updateMaster != nil {
		if cfg.UpdateKeys, err = kpe.DeriveUpdateKeys(updateMaster, p.Info.Serial); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}
