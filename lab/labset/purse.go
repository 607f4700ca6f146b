package labset

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"kpe-agent/apdu/kpe"
	"kpe-agent/lab/cardsim/kpeapp"
)

// PurseConfig is a KPE's purse personalised from the purse masters: its
// debit and credit keys diversified from them and the card serial, and
// the spec's starting balance and maximum.
func PurseConfig(serial [8]byte, debitMaster, creditMaster []byte, ps PurseSpec) (*kpeapp.PurseConfig, error) {
	dk, err := kpe.DerivePurseKey(kpe.PurseDebit, debitMaster, serial)
	if err != nil {
		return nil, err
	}
	ck, err := kpe.DerivePurseKey(kpe.PurseCredit, creditMaster, serial)
	if err != nil {
		return nil, err
	}
	max := ps.MaxBalance
	if max == 0 {
		max = kpe.DefaultMaxBalance
	}
	if ps.Balance > max {
		return nil, fmt.Errorf("purse: balance %d over the maximum %d", ps.Balance, max)
	}
	return &kpeapp.PurseConfig{Serial: serial, DebitKey: dk, CreditKey: ck, Balance: ps.Balance, MaxBalance: max}, nil
}

// purseKeysFile is the purse masters file: {"debit_master", "credit_master"}
// as hex, the format the back office's --purse-keys reads (strictly: no
// other keys). The lab's masters are lab keys only, never for real cards.
type purseKeysFile struct {
	DebitMaster  string `json:"debit_master"`
	CreditMaster string `json:"credit_master"`
}

// WritePurseKeys writes the lab's purse masters file (mode 0600: it holds
// keys, even lab ones).
func WritePurseKeys(path string, debit, credit []byte) error {
	b, err := json.MarshalIndent(purseKeysFile{
		DebitMaster: hex.EncodeToString(debit), CreditMaster: hex.EncodeToString(credit),
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}
