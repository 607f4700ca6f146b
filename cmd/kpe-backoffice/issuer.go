package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/issuer"
)

// The issuer's document signer (docs/renewal.md, "HSM setup"): serve's
// --issuer-* and --pkcs11-* flags, and kpe-backoffice issuer init|show.
// The PIN comes from --pkcs11-pin-file or $KPE_PKCS11_PIN, never printed.

// issuerFlags are the flags that say where the issuer key is.
type issuerFlags struct {
	kind, key, cert                       string
	module, token, pin, pinFile, keyLabel string
	flags                                 *pflag.FlagSet
}

const (
	signerFile   = "file"
	signerPKCS11 = "pkcs11"
)

// addPKCS11 adds the flags naming a key in a PKCS#11 token.
func (o *issuerFlags) addPKCS11(f *pflag.FlagSet) {
	o.flags = f
	f.StringVar(&o.module, "pkcs11-module", "", "PKCS#11 module of the HSM (a shared library; SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)")
	f.StringVar(&o.token, "pkcs11-token", "", "label of the token holding the issuer key")
	f.StringVar(&o.keyLabel, "pkcs11-key-label", "", "label of the issuer key pair in the token")
	f.StringVar(&o.pinFile, "pkcs11-pin-file", "", "file holding the token's user PIN (first line)")
	f.StringVar(&o.pin, "pkcs11-pin", "", "the token's user PIN (default $KPE_PKCS11_PIN, never printed; prefer the variable or --pkcs11-pin-file: other users see a command line)")
	clikit.EnvDefault(f, "pkcs11-pin", "KPE_PKCS11_PIN")
}

// addSigner adds --issuer-signer, --issuer-key and --issuer-cert and the
// PKCS#11 flags.
func (o *issuerFlags) addSigner(f *pflag.FlagSet, kindDefault, kindHelp string) {
	f.StringVar(&o.kind, "issuer-signer", kindDefault, kindHelp)
	f.StringVar(&o.key, "issuer-key", "", "file signer (lab only): PEM file of the issuer's P-256 private key")
	f.StringVar(&o.cert, "issuer-cert", "", "PEM file of the issuer's document-signer certificate (for the key in the file or the token)")
	o.addPKCS11(f)
}

// pkcs11Config checks the PKCS#11 flags (the certificate too when
// needCert) and reads the PIN.
func (o *issuerFlags) pkcs11Config(needCert bool) (issuer.PKCS11Config, error) {
	var missing []string
	for _, m := range []struct{ name, v string }{{"--pkcs11-module", o.module}, {"--pkcs11-token", o.token}, {"--pkcs11-key-label", o.keyLabel}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if needCert && o.cert == "" {
		missing = append(missing, "--issuer-cert")
	}
	if len(missing) > 0 {
		return issuer.PKCS11Config{}, clikit.Usagef("the PKCS#11 signer needs %s", strings.Join(missing, ", "))
	}
	pin := o.pin
	if o.pinFile != "" {
		if o.flags != nil && o.flags.Changed("pkcs11-pin") {
			return issuer.PKCS11Config{}, clikit.Usagef("--pkcs11-pin and --pkcs11-pin-file: give one")
		}
		b, err := os.ReadFile(o.pinFile)
		if err != nil {
			return issuer.PKCS11Config{}, fmt.Errorf("--pkcs11-pin-file: %w", err)
		}
		pin, _, _ = strings.Cut(string(b), "\n")
		pin = strings.TrimRight(pin, "\r")
	}
	if pin == "" {
		return issuer.PKCS11Config{}, clikit.Usagef("the PKCS#11 signer needs the token's PIN: --pkcs11-pin-file or $KPE_PKCS11_PIN")
	}
	return issuer.PKCS11Config{Module: o.module, TokenLabel: o.token, PIN: pin, KeyLabel: o.keyLabel, CertPath: o.cert}, nil
}

// check refuses flags that do not go together (usage errors), before
// anything is opened.
func (o *issuerFlags) check() error {
	pkcs11Set := o.module != "" || o.token != "" || o.keyLabel != "" || o.pinFile != ""
	switch o.kind {
	case "":
		if o.key != "" || o.cert != "" || pkcs11Set {
			return clikit.Usagef("--issuer-key, --issuer-cert and --pkcs11-*: give --issuer-signer file or pkcs11 too")
		}
	case signerFile:
		if pkcs11Set {
			return clikit.Usagef("--pkcs11-* flags go with --issuer-signer pkcs11, not file")
		}
		if o.key == "" || o.cert == "" {
			return clikit.Usagef("--issuer-signer file needs --issuer-key and --issuer-cert")
		}
	case signerPKCS11:
		if o.key != "" {
			return clikit.Usagef("--issuer-key goes with --issuer-signer file: with pkcs11 the key stays in the token")
		}
		if _, err := o.pkcs11Config(true); err != nil {
			var ue clikit.UsageError
			if errors.As(err, &ue) {
				return err
			}
		}
	default:
		return clikit.Usagef("--issuer-signer %q: want file or pkcs11", o.kind)
	}
	return nil
}

// open opens the signer the flags name; none (nil) when --issuer-signer
// is empty and no other issuer flag is given.
func (o *issuerFlags) open() (issuer.IssuerSigner, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	switch o.kind {
	case signerFile:
		s, err := issuer.OpenFile(o.key, o.cert)
		if err != nil {
			return nil, fmt.Errorf("--issuer-key/--issuer-cert: %w", err)
		}
		return s, nil
	case signerPKCS11:
		cfg, err := o.pkcs11Config(true)
		if err != nil {
			return nil, err
		}
		s, err := issuer.OpenPKCS11(cfg)
		if err != nil {
			return nil, fmt.Errorf("--issuer-signer pkcs11: %w", err)
		}
		return s, nil
	}
	return nil, nil
}

// issuerSetup opens the issuer signer of serve and the issuer roots; a
// signer needs the roots (a card's EF.SOD is verified with them before a
// renewal is built on it) and its certificate must chain to them now,
// else the terminals would refuse every offer.
func issuerSetup(o *issuerFlags, rootsPath string, now time.Time) (issuer.IssuerSigner, *x509.CertPool, error) {
	if err := checkIssuerFlags(o, rootsPath); err != nil {
		return nil, nil, err
	}
	var roots *x509.CertPool
	if rootsPath != "" {
		var err error
		if roots, _, err = loadPool(rootsPath); err != nil {
			return nil, nil, fmt.Errorf("--issuer-roots: %w", err)
		}
	}
	s, err := o.open()
	if err != nil || s == nil {
		return nil, roots, err
	}
	if err := checkChain(s.Certificate(), roots, now); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("--issuer-cert: %w", err)
	}
	return s, roots, nil
}

// checkIssuerFlags is serve's usage check of the issuer flags.
func checkIssuerFlags(o *issuerFlags, rootsPath string) error {
	if o.kind != "" && rootsPath == "" {
		return clikit.Usagef("--issuer-signer needs --issuer-roots (the BKN issuer CAs)")
	}
	return o.check()
}

// checkChain checks that cert chains to roots at now.
func checkChain(cert *x509.Certificate, roots *x509.CertPool, now time.Time) error {
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the document-signer certificate %q does not verify with --issuer-roots: %w", cert.Subject.String(), err)
	}
	return nil
}

func issuerCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "The issuer's document signer in an HSM: init (key and CSR), show",
		Long: `The issuer's document signer signs the new security objects and the authorisations of card data
renewals. Its key is made inside a PKCS#11 token (an HSM; SoftHSM2 in the lab) and never leaves it:
"issuer init" generates it and writes a certificate signing request for the BKN issuer CA; "serve"
then uses it with --issuer-signer pkcs11 and the certificate the CA issued. The PIN comes from
--pkcs11-pin-file or $KPE_PKCS11_PIN. See docs/renewal.md, "HSM setup".`,
	}
	cmd.AddCommand(issuerInitCommand(stdout), issuerShowCommand(stdout))
	return cmd
}

func issuerInitCommand(stdout io.Writer) *cobra.Command {
	var o issuerFlags
	var out, cn string
	var org []string
	c := &cobra.Command{
		Use:   "init --pkcs11-module SO --pkcs11-token LABEL --pkcs11-key-label LABEL --out CSR.pem",
		Short: "Generate the issuer key in the token and write a certificate signing request",
		Long: `init generates an ECDSA P-256 key pair inside the token (sensitive, not extractable: the private key
never leaves the token), labelled --pkcs11-key-label, and writes a PKCS#10 certificate signing
request signed by that key to --out (PEM). A label already in use is refused: an issuer key is
never replaced by accident. Send the request to the BKN issuer CA; its document-signer certificate
goes to serve's --issuer-cert.`,
		Example: `  KPE_PKCS11_PIN=... kpe-backoffice issuer init --pkcs11-module /usr/lib/softhsm/libsofthsm2.so \
      --pkcs11-token kpe-issuer --pkcs11-key-label bkn-ds-2026 --common-name "BKN Document Signer 2026" --out ds.csr`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return clikit.Usagef("--out: where to write the certificate signing request")
			}
			if cn == "" {
				return clikit.Usagef("--common-name: the document signer's name")
			}
			cfg, err := o.pkcs11Config(false)
			if err != nil {
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("--out %s exists already", out)
			}
			csr, err := issuer.GenerateInToken(cfg, pkix.Name{CommonName: cn, Organization: org})
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o644); err != nil {
				return fmt.Errorf("--out: %w (the key %q is in the token; init again with another label, or remove it there)", err, cfg.KeyLabel)
			}
			fmt.Fprintf(stdout, "key %q generated in token %q (ECDSA P-256, not extractable)\ncertificate signing request: %s\n", cfg.KeyLabel, cfg.TokenLabel, out)
			return nil
		},
	}
	f := c.Flags()
	o.addPKCS11(f)
	f.StringVar(&out, "out", "", "file to write the certificate signing request to (PEM)")
	f.StringVar(&cn, "common-name", "BKN Document Signer", "the request's subject common name")
	f.StringSliceVar(&org, "organization", []string{"Badan Kepegawaian Negara"}, "the request's subject organisation")
	return c
}

func issuerShowCommand(stdout io.Writer) *cobra.Command {
	var o issuerFlags
	var roots string
	c := &cobra.Command{
		Use:   "show --issuer-signer pkcs11|file --issuer-cert PEM [flags]",
		Short: "Show the issuer key and certificate, and whether they match",
		Long: `show opens the issuer signer as serve would and prints the token (or key file), the key label, the
certificate's subject, serial and validity, and whether the key in the token is the certificate's.
With --issuer-roots it also says whether the certificate chains to the BKN issuer CAs. It exits 1
when the key does not match the certificate, the certificate has expired, or it does not chain.`,
		Example: `  KPE_PKCS11_PIN=... kpe-backoffice issuer show --issuer-signer pkcs11 --pkcs11-module /usr/lib/softhsm/libsofthsm2.so \
      --pkcs11-token kpe-issuer --pkcs11-key-label bkn-ds-2026 --issuer-cert ds.pem --issuer-roots bkn-ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return issuerShow(stdout, &o, roots, time.Now())
		},
	}
	f := c.Flags()
	o.addSigner(f, signerPKCS11, "where the key is: pkcs11 (an HSM) or file (lab only)")
	f.StringVar(&roots, "issuer-roots", "", "PEM: the BKN issuer CAs the certificate should chain to (optional)")
	return c
}

func issuerShow(w io.Writer, o *issuerFlags, rootsPath string, now time.Time) error {
	if o.kind == "" {
		return clikit.Usagef("--issuer-signer: want file or pkcs11")
	}
	if o.cert == "" {
		return clikit.Usagef("--issuer-cert: the document-signer certificate")
	}
	cert, err := issuer.LoadCertificate(o.cert)
	if err != nil {
		return fmt.Errorf("--issuer-cert: %w", err)
	}
	switch o.kind {
	case signerPKCS11:
		fmt.Fprintf(w, "signer:       PKCS#11 token %q (module %s)\nkey:          %q\n", o.token, o.module, o.keyLabel)
	case signerFile:
		fmt.Fprintf(w, "signer:       key file %s (lab only)\n", o.key)
	}
	fmt.Fprintf(w, "certificate:  %s\nsubject:      %s\nissuer:       %s\nserial:       %X\nvalid:        %s to %s\n",
		o.cert, cert.Subject, cert.Issuer, cert.SerialNumber, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	var problems []string
	if now.After(cert.NotAfter) {
		problems = append(problems, "the certificate has expired")
	} else if now.Before(cert.NotBefore) {
		problems = append(problems, "the certificate is not valid yet")
	}
	s, err := o.open()
	switch {
	case errors.Is(err, issuer.ErrKeyMismatch):
		fmt.Fprintln(w, "key matches:  no")
		problems = append(problems, "the key is not the certificate's")
	case err != nil:
		return err
	default:
		s.Close()
		fmt.Fprintln(w, "key matches:  yes")
	}
	if rootsPath != "" {
		pool, _, err := loadPool(rootsPath)
		if err != nil {
			return fmt.Errorf("--issuer-roots: %w", err)
		}
		if err := checkChain(cert, pool, now); err != nil {
			fmt.Fprintln(w, "chains:       no")
			problems = append(problems, err.Error())
		} else {
			fmt.Fprintln(w, "chains:       yes")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
