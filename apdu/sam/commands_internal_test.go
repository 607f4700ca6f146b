package sam

import (
	"encoding/hex"
	"strings"
	"testing"

	"kpe-agent/apdu"
)

// The SAM's commands byte for byte (docs/card-profiles.md §4 and the worked
// example §6.3).
func TestCommandBytes(t *testing.T) {
	var digest [DigestLen]byte
	for i := range digest {
		digest[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		cmd  apdu.Command
		want string
	}{
		{"GET DATA", getInfoCommand(), "80CA0101 00"},
		{"ACTIVATE terminal", activateCommand(ActivateTerminal, []byte("123456")), "80100100 06 313233343536"},
		{"ACTIVATE KTP-el", activateCommand(ActivateKTPel, EncodePair([]byte{1}, []byte{2, 3})), "80100200 07 800101 81020203"},
		{"SIGN RECORD", signRecordCommand(digest), "80400000 20 " + hex.EncodeToString(digest[:]) + " 00"},
		{"GET COUNTER", getCounterCommand(), "80420000 04"},
		{"CARD AUTH INIT KPE", cardAuthInitCommand(ProfileKPE, []byte{0, 0, 0, 0, 0, 0, 0, 1}, []byte{0xC0, 0xC1}),
			"80200100 0E 80080000000000000001 8102C0C1 00"},
		{"CARD AUTH INIT KTP-el", cardAuthInitCommand(ProfileKTPel, []byte{4, 0x11, 0x22, 0x33}, []byte{0xC0}),
			"80200200 09 800404112233 8101C0 00"},
		{"CARD AUTH COMPLETE KPE", cardAuthCompleteCommand(ProfileKPE, []byte{0xEE}), "80220100 01 EE 00"},
		{"CARD AUTH COMPLETE KTP-el", cardAuthCompleteCommand(ProfileKTPel, []byte{0xEE}), "80220200 01 EE"},
		{"SM WRAP", smCommand(InsSMWrap, []byte{0x00, 0xB0, 0x00, 0x00, 0x10}), "80300200 05 00B0000010 00"},
		{"SM UNWRAP", smCommand(InsSMUnwrap, []byte{0x90, 0x00}), "80320200 02 9000 00"},
		{"PSEUDONYM NIK", pseudonymCommand(DomainNIK, []byte("3174096112900001")), "80500100 10 33313734303936313132393030303031 20"},
		{"PSEUDONYM chip UID", pseudonymCommand(DomainChipUID, []byte{0x04, 0x11, 0x22, 0x33}), "80500200 04 04112233 20"},
	} {
		b, err := tc.cmd.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got, want := hex.EncodeToString(b), strings.ToLower(strings.ReplaceAll(tc.want, " ", "")); got != want {
			t.Errorf("%s: %s, want %s", tc.name, got, want)
		}
	}
}
