package strictjson

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type inner struct {
	Status string `json:"status"`
}

type outer struct {
	NIP   string  `json:"nip"`
	Inner inner   `json:"inner"`
	List  []inner `json:"list"`
}

func TestDecode(t *testing.T) {
	var v outer
	require.NoError(t, Decode([]byte(`{"nip":"1","inner":{"status":"PNS"},"list":[{"status":"a"}]}`), &v))
	assert.Equal(t, "PNS", v.Inner.Status)
	for name, tc := range map[string]struct{ json, field string }{
		"upper-case key":       {`{"NIP":"1"}`, "NIP"},
		"look-alike key":       {`{"inner":{"ſtatus":"x"}}`, "inner.ſtatus"},
		"repeated key":         {`{"nip":"1","nip":"2"}`, "nip"},
		"repeated in any case": {`{"inner":{"status":"a","Status":"b"}}`, "inner.Status"},
		"nested in an array":   {`{"list":[{"status":"a"},{"status":"b","status":"c"}]}`, "list[1].status"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Decode([]byte(tc.json), &v)
			var ke *KeyError
			require.ErrorAs(t, err, &ke)
			assert.Equal(t, tc.field, ke.Field)
		})
	}
	assert.Error(t, Decode([]byte(`{"nip":"1","extra":2}`), &v), "unknown field")
	assert.Error(t, Decode([]byte(`{"nip":"1"} {}`), &v), "trailing data")
	assert.Empty(t, KeyProblems([]byte(`{"a_1":[{"b":{}}]`)), "malformed JSON is decoding's to report")
}
