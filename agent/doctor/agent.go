package doctor

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"kpe-agent/agent/api"
	"kpe-agent/agent/config"
)

// ErrAgentCert: the agent's TLS certificate (api.tls_cert_file) could
// not be read or holds no certificate.
var ErrAgentCert = errors.New("api.tls_cert_file")

// LocalAgent returns a client of the agent that a's configuration
// describes: at url, or api.listen when url is empty. When the agent
// serves TLS (api.tls_cert_file) a bare host:port is taken as https and
// the client trusts exactly that certificate. Errors from reading the
// certificate are ErrAgentCert; a bad URL is api.NewClient's error.
func LocalAgent(a config.API, url, token string) (*api.Client, error) {
	if url == "" {
		url = a.Listen
	}
	var opts []api.Option
	if a.TLS() {
		if !strings.Contains(url, "://") {
			url = "https://" + url
		}
		pem, err := os.ReadFile(a.TLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAgentCert, err)
		}
		pin, err := api.PinnedCert(pem)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrAgentCert, a.TLSCertFile, err)
		}
		opts = append(opts, pin)
	}
	return api.NewClient(url, token, opts...)
}
