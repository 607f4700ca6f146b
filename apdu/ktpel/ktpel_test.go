package ktpel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleBiodata() Biodata {
	return Biodata{
		NIK: "3174054309850003", Name: "SITI RAHMAWATI", BirthPlace: "JAKARTA", BirthDate: "03-09-1985",
		Gender: "PEREMPUAN", BloodType: "O", Address: "JL. KEBON SIRIH NO. 5", RT: "003", RW: "007",
		Village: "GONDANGDIA", District: "MENTENG", Regency: "JAKARTA PUSAT", Province: "DKI JAKARTA",
		Religion: "ISLAM", MaritalStatus: "KAWIN", Occupation: "PEGAWAI NEGERI SIPIL",
		Nationality: "WNI", ValidUntil: "SEUMUR HIDUP",
	}
}

func TestRoundTrips(t *testing.T) {
	h := Header{ChipSerial: []byte{1, 2, 3, 4, 5, 6, 7}, Version: 1}
	gotH, err := ParseHeader(h.Encode())
	require.NoError(t, err)
	require.Equal(t, h, gotH)

	d := sampleBiodata()
	gotD, err := ParseBiodata(append(d.Encode(), 0, 0))
	require.NoError(t, err)
	require.Equal(t, d, gotD)

	f := Fingerprint{Finger: 7, Template: []byte("FMR\x00 20\x00...")}
	gotF, err := ParseFingerprint(f.Encode())
	require.NoError(t, err)
	require.Equal(t, f, gotF)
	gotF.Wipe()
	require.Nil(t, gotF.Template)
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]func() error{
		"biodata missing NIK": func() error { _, err := ParseBiodata(Biodata{Name: "X"}.Encode()); return err },
		"biodata unknown tag": func() error { _, err := ParseBiodata([]byte{0x71, 0x03, 0x9F, 0x20, 0x00}); return err },
		"biodata duplicate": func() error {
			_, err := ParseBiodata([]byte{0x71, 0x06, 0x80, 0x01, 0x31, 0x80, 0x01, 0x32})
			return err
		},
		"biodata not utf8": func() error {
			_, err := ParseBiodata([]byte{0x71, 0x06, 0x80, 0x01, 0x31, 0x81, 0x01, 0xFF})
			return err
		},
		"header wrong tag":  func() error { _, err := ParseHeader([]byte{0x71, 0x00}); return err },
		"header no version": func() error { _, err := ParseHeader([]byte{0x70, 0x03, 0x80, 0x01, 0x01}); return err },
		"finger position 11": func() error {
			_, err := ParseFingerprint([]byte{0x72, 0x06, 0x80, 0x01, 0x0B, 0x81, 0x01, 0x00})
			return err
		},
		"finger no template": func() error { _, err := ParseFingerprint([]byte{0x72, 0x03, 0x80, 0x01, 0x01}); return err },
		"truncated":          func() error { _, err := ParseBiodata(sampleBiodata().Encode()[:30]); return err },
	} {
		require.ErrorIs(t, tc(), ErrFormat, name)
	}
}

// Population data must not reach logs, whichever way a value is printed.
func TestRedaction(t *testing.T) {
	d := sampleBiodata()
	f := Fingerprint{Finger: 2, Template: []byte("SECRET-MINUTIAE")}
	type result struct {
		Bio    Biodata
		Finger Fingerprint
	}
	r := result{d, f}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("read", "bio", d, "finger", f)
	log.Info("read", "result", r)
	js, err := json.Marshal(r)
	require.NoError(t, err)
	logs.Write(js)
	printed := fmt.Sprintf("%v %+v %#v %s %v %+v", d, d, d, d, r, r) + fmt.Sprint(f, r) + logs.String()
	for _, secret := range []string{d.NIK, d.Name, d.Address, "SECRET-MINUTIAE"} {
		require.False(t, strings.Contains(printed, secret), "%q leaked: %s", secret, printed)
	}
}
