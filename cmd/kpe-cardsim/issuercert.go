package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"kpe-agent/lab/labpki"
)

// issuerCertCommand: kpe-cardsim issuer-cert --ca-cert PEM --ca-key PEM
// --csr FILE --out PEM. The lab's stand-in for the BKN issuer CA: it
// certifies the back office's issuer key (kpe-backoffice issuer init) as
// a document signer (docs/renewal.md, "HSM setup").
func issuerCertCommand(stdout io.Writer) *cobra.Command {
	var caCert, caKey, csrPath, out string
	cmd := &cobra.Command{
		Use:   "issuer-cert --ca-cert PEM --ca-key PEM --csr FILE --out PEM",
		Short: "Certify an issuer key's CSR as a document signer under a lab issuer CA",
		Long: `Certifies the key of a certificate signing request (kpe-backoffice issuer init; ECDSA P-256, its
signature checked) as a document signer (key usage digitalSignature, CA false) under the lab issuer
CA given by --ca-cert and --ca-key, and writes the certificate to --out (PEM) for kpe-backoffice
serve's --issuer-cert. Lab CAs only: never for a real issuer.`,
		Example: `  kpe-cardsim issuer-cert --ca-cert lab/bkn-ca.pem --ca-key lab/bkn-ca-key.pem --csr ds.csr --out ds.pem`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := labpki.LoadCA(caCert, caKey)
			if err != nil {
				return err
			}
			csr, err := os.ReadFile(csrPath)
			if err != nil {
				return err
			}
			cert, err := ca.DocumentSignerFromCSR(csr)
			if err != nil {
				return fmt.Errorf("--csr %s: %w", csrPath, err)
			}
			if err := labpki.WriteCert(out, cert); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "document signer %q under %q, valid until %s: %s\n", cert.Subject.String(), cert.Issuer.String(),
				cert.NotAfter.UTC().Format("2006-01-02"), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&caCert, "ca-cert", "", "PEM: the lab issuer CA's certificate")
	f.StringVar(&caKey, "ca-key", "", "PEM: the lab issuer CA's private key")
	f.StringVar(&csrPath, "csr", "", "the certificate signing request (PEM or DER)")
	f.StringVarP(&out, "out", "o", "", "file to write the document-signer certificate to (PEM)")
	for _, n := range []string{"ca-cert", "ca-key", "csr", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
