package identity

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"kpe-agent/apdu/kpe"
)

func TestCheckKPE(t *testing.T) {
	ref := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	ok := &kpe.Card{Info: kpe.CardInfo{Type: kpe.CardKPE}, Identity: kpe.Identity{
		NIP: "196608011988031001", BirthDate: "19660801", Gender: "L", NIK: "3471010108660001"}}
	require.Empty(t, CheckKPE(ok, ref))

	// The sample "KPE whose NIP contradicts its birth date and gender".
	bad := &kpe.Card{Info: kpe.CardInfo{Type: kpe.CardKPE}, Identity: kpe.Identity{
		NIP: "196608011988032001", BirthDate: "19670305", Gender: "L", NIK: "3471010503670001"}}
	codes := map[string]bool{}
	for _, w := range CheckKPE(bad, ref) {
		codes[w.Code] = true
		require.NotEmpty(t, w.ID)
		require.NotEmpty(t, w.EN)
	}
	require.True(t, codes[CodeNIPBirthDateMismatch], "%v", codes)
	require.True(t, codes[CodeNIPGenderMismatch], "%v", codes)

	// A KPE Tambahan: the spouse's own NIK and data agree; the linked NIP is
	// the civil servant's and must not be compared with the spouse.
	spouse := &kpe.Card{Info: kpe.CardInfo{Type: kpe.CardKPETambahan}, Identity: kpe.Identity{
		LinkedNIP: "196608011988031001", BirthDate: "19700605", Gender: "P", NIK: "3471014506700002"}}
	require.Empty(t, CheckKPE(spouse, ref))
}
