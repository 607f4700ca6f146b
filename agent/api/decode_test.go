package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// decode takes exactly one JSON object with known fields (or nothing).
func TestDecodeStrict(t *testing.T) {
	for body, ok := range map[string]bool{
		``:                                       true,
		`{"service":"askes"}`:                    true,
		" {\"service\":\"askes\"} \n":            true,
		`{"service":"askes"}}`:                   false,
		`{"service":"askes"}]`:                   false,
		`{"service":"askes"} {}`:                 false,
		`{"service":"askes"} x`:                  false,
		`{"service":"askes","bogus":1}`:          false,
		`{"service":`:                            false,
		`{"service":"askes","wait_seconds":"1"}`: false,
	} {
		var req AuthRequest
		err := decode(httptest.NewRequest("POST", PathAuth, strings.NewReader(body)), &req)
		assert.Equal(t, ok, err == nil, "%q: %v", body, err)
	}
}
