// Command kpe-backoffice is the reference back office: terminals send their
// records over mutual TLS; staff verify printed codes on a web page, look
// at terminal status and alarms, and download the semester report.
//
//	kpe-backoffice serve [flags]       run the back office
//	kpe-backoffice institution ...     the institutions of the institutions' API
//	kpe-backoffice user add|passwd|disable|list   staff accounts
//	kpe-backoffice issuer init|show    the issuer's document signer in an HSM
//	kpe-backoffice renewal import|list  card data renewal updates
//	kpe-backoffice topup stage|list|cancel  e-wallet top-ups
//	kpe-backoffice settlement --date D  the e-wallet's settlement file of a day
//	kpe-backoffice version [--json]
//
// Storage is an embedded bbolt file by default (--db FILE) or PostgreSQL
// (--pg DSN, or KPE_BACKOFFICE_PG). The lab's TLS keys come from
// kpe-cardsim pki (the shipped binaries do not link the card lab). See
// docs/backoffice.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	return clikit.Main(rootCommand(stdout, stderr), args, stdout, stderr)
}

// serveOptions are serve's flags.
type serveOptions struct {
	listen, staff, dbPath, pg        string
	samCA, tlsCert, tlsKey, clientCA string
	soft                             bool
	skew, certSkew                   time.Duration
	crl                              string
	crlPoll                          time.Duration
	zone                             string
	inst                             multi
	staffHosts                       []string
	perClient, total                 backoffice.Limit
	instListen, instClientCA         string // institution.go
	oidc                             backoffice.OIDCConfig
	maxIngest, pgConns, staffConns   int
	issuer                           issuerFlags // issuer.go
	issuerRoots                      string
	topUp                            topUpFlags    // topup.go
	purseKeys                        purseKeyFlags // settlement.go
}

func rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kpe-backoffice",
		Short: "Reference back office for kpe-agent terminals",
		Long: `kpe-backoffice is the reference back office: terminals send their records over mutual TLS; staff
verify printed codes on a web page, look at terminal status and alarms, and download the semester
report. See docs/backoffice.md.

Exit codes: 0 success; 1 failure; 2 usage error.`,
		Example: `  kpe-cardsim pki --dir /tmp/pki --terminal lab-01
  kpe-backoffice serve --sam-ca testdata/cards/lab/trust/backoffice-ca.pem \
      --tls-cert /tmp/pki/server.pem --tls-key /tmp/pki/server-key.pem --client-ca /tmp/pki/tls-ca.pem`,
	}
	o := serveOptions{inst: multi{}}
	serveCmd := &cobra.Command{
		Use:   "serve --sam-ca PEM --tls-cert PEM --tls-key PEM --client-ca PEM [flags]",
		Short: "Run the back office: the terminal API (mTLS) and the staff page",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), o, stdout, stderr) },
	}
	f := serveCmd.Flags()
	f.StringVar(&o.listen, "listen", ":8443", "terminal API address (HTTPS with client certificates)")
	f.StringVar(&o.staff, "staff-listen", "127.0.0.1:8080", "staff page and API address (plain HTTP; keep it on the staff network)")
	f.StringArrayVar(&o.staffHosts, "staff-host", nil, "a host name staff reach the staff listener by (repeatable); other Host headers are refused")
	f.Float64Var(&o.perClient.Rate, "verify-rate", backoffice.DefaultVerifyPerClient.Rate, "code verifications a second per client address, on average")
	f.IntVar(&o.perClient.Burst, "verify-burst", backoffice.DefaultVerifyPerClient.Burst, "code verifications per client address at once")
	f.Float64Var(&o.total.Rate, "verify-total-rate", backoffice.DefaultVerifyTotal.Rate, "code verifications a second for all clients, on average")
	f.IntVar(&o.total.Burst, "verify-total-burst", backoffice.DefaultVerifyTotal.Burst, "code verifications for all clients at once")
	f.StringVar(&o.dbPath, "db", "backoffice.db", "embedded store file (when --pg is not given)")
	f.StringVar(&o.pg, "pg", "", "PostgreSQL DSN (postgres://user:pass@host/db; default $KPE_BACKOFFICE_PG, never printed)")
	clikit.EnvDefault(f, "pg", "KPE_BACKOFFICE_PG")
	f.IntVar(&o.maxIngest, "max-ingest", 0, "batches taken at once; beyond it 503 busy with a jittered Retry-After (0: the ingest pool's size, at least GOMAXPROCS; -1: no limit)")
	f.IntVar(&o.pgConns, "pg-conns", 0, "PostgreSQL: ingest pool connections (0: the DSN's pool_max_conns, else max(4, CPUs))")
	f.IntVar(&o.staffConns, "pg-staff-conns", backoffice.DefaultStaffConns, "PostgreSQL: connections kept for verification and the staff's reads")
	f.StringVar(&o.samCA, "sam-ca", "", "PEM: the CA SAM terminal certificates chain to")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM: server certificate")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM: server key")
	f.StringVar(&o.clientCA, "client-ca", "", "PEM: the CA terminal client certificates chain to")
	f.BoolVar(&o.soft, "accept-software", false, "accept software-signed records (demos without a SAM only)")
	f.DurationVar(&o.skew, "skew", 5*time.Minute, "clock difference beyond which a terminal is told its clock is off")
	f.DurationVar(&o.certSkew, "sam-cert-skew", backoffice.DefaultCertificateSkew,
		"allowance for a terminal's clock when a record's signing time is judged against its SAM certificate's validity")
	f.StringVar(&o.crl, "sam-crl", "", "file: X.509 CRLs (PEM or DER) of the SAM CA; reloaded when it changes and on SIGHUP")
	f.DurationVar(&o.crlPoll, "sam-crl-poll", time.Minute, "how often --sam-crl is checked for changes")
	f.StringVar(&o.zone, "zone", "Asia/Jakarta", "time zone of the semester report")
	f.Var(o.inst, "institution", "SITE=INSTITUTION: report a site under an institution (repeatable)")
	f.StringVar(&o.instListen, "institution-listen", "", "institutions' API address (HTTPS with --tls-cert; off when empty; docs/institutions.md)")
	f.StringVar(&o.instClientCA, "institution-client-ca", "", "PEM: the CA institutions' client certificates chain to (optional; API keys otherwise)")
	f.StringVar(&o.oidc.Issuer, "oidc-issuer", "", "staff sign-in through this OpenID Connect provider (its issuer URL; docs/staff-signin.md)")
	f.StringVar(&o.oidc.ClientID, "oidc-client-id", "", "the back office's client id at the OIDC provider")
	f.StringVar(&o.oidc.RedirectURL, "oidc-redirect-url", "", "the staff listener's https://HOST/login/oidc/callback, as registered at the provider")
	f.StringVar(&o.oidc.ClientSecret, "oidc-client-secret", "", "the client secret (default $KPE_BACKOFFICE_OIDC_SECRET, never printed)")
	clikit.EnvDefault(f, "oidc-client-secret", "KPE_BACKOFFICE_OIDC_SECRET")
	f.BoolVar(&o.oidc.AllowAdmin, "oidc-allow-admin", false, "let accounts holding the admin role sign in through OIDC (default: admins use their password)")
	o.issuer.addSigner(f, "", "the issuer's document signer for card data renewals: pkcs11 (an HSM) or file (lab only); none: renewal offers are answered 503 (docs/renewal.md)")
	f.StringVar(&o.issuerRoots, "issuer-roots", "", "PEM: the BKN issuer CAs a card's EF.SOD must chain to (needed with --issuer-signer)")
	o.topUp.add(f, true)
	o.purseKeys.add(f)
	for _, name := range []string{"sam-ca", "tls-cert", "tls-key", "client-ca"} {
		_ = serveCmd.MarkFlagRequired(name)
	}
	root.AddCommand(serveCmd, institutionCommand(stdout), userCommand(stdout), issuerCommand(stdout), renewalCommand(stdout), topUpCommand(stdout), settlementCommand(stdout), purseCommand(stdout))
	return root
}

type multi map[string]string

func (m multi) Type() string   { return "SITE=NAME" }
func (m multi) String() string { return fmt.Sprint(map[string]string(m)) }
func (m multi) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("want SITE=INSTITUTION, got %q", s)
	}
	m[k] = v
	return nil
}

func serve(ctx context.Context, o serveOptions, stdout, stderr io.Writer) error {
	for name, v := range map[string]float64{"--verify-rate": o.perClient.Rate, "--verify-burst": float64(o.perClient.Burst),
		"--verify-total-rate": o.total.Rate, "--verify-total-burst": float64(o.total.Burst)} {
		if !(v > 0) || math.IsInf(v, 0) {
			return clikit.Usagef("%s: want a number above 0", name)
		}
	}
	if (o.oidc.Issuer != "") != (o.oidc.ClientID != "") || (o.oidc.Issuer != "") != (o.oidc.RedirectURL != "") {
		return clikit.Usagef("--oidc-issuer, --oidc-client-id and --oidc-redirect-url go together")
	}
	if o.maxIngest < -1 || o.pgConns < 0 || o.staffConns < 0 {
		return clikit.Usagef("--max-ingest: want -1, 0 or more; --pg-conns and --pg-staff-conns: 0 (the default) or more")
	}
	if err := checkIssuerFlags(&o.issuer, o.issuerRoots); err != nil {
		return err
	}
	topUpCfg, err := o.topUp.config(true) // topup.go
	if err != nil {
		return err
	}
	staffHosts, err := backoffice.StaffHosts(o.staff, o.staffHosts)
	if err != nil {
		return clikit.UsageError{Err: fmt.Errorf("--staff-host/--staff-listen: %w", err)}
	}
	roots, samCAs, err := loadPool(o.samCA)
	if err != nil {
		return fmt.Errorf("--sam-ca: %w", err)
	}
	clients, _, err := loadPool(o.clientCA)
	if err != nil {
		return fmt.Errorf("--client-ca: %w", err)
	}
	if o.crlPoll <= 0 {
		return fmt.Errorf("--sam-crl-poll: %v is not a positive duration", o.crlPoll)
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	loc, err := time.LoadLocation(o.zone)
	if err != nil {
		return fmt.Errorf("--zone: %w", err)
	}
	signer, issuerRoots, err := issuerSetup(&o.issuer, o.issuerRoots, time.Now())
	if err != nil {
		return err
	}
	if signer != nil {
		defer signer.Close()
	}
	purseKeys, err := o.purseKeys.load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	store, storeKind, err := openStore(ctx, o.dbPath, o.pg, backoffice.PGOptions{Conns: o.pgConns, StaffConns: o.staffConns})
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := backoffice.New(store, backoffice.Config{CA: roots, AcceptSoftware: o.soft, SkewTolerance: o.skew, Institutions: o.inst,
		CertificateSkew: o.certSkew, Log: log, Issuer: signer, IssuerRoots: issuerRoots, TopUp: topUpCfg, PurseKeys: purseKeys})
	if err != nil {
		return err
	}
	if err := ewalletAtStart(ctx, svc, purseKeys, log); err != nil { // settlement.go
		return err
	}
	if o.crl != "" {
		crl, err := svc.LoadCRLFile(o.crl, samCAs)
		if err != nil {
			return fmt.Errorf("--sam-crl: %w", err)
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		watch, stop := context.WithCancel(ctx)
		defer stop()
		go crl.Watch(watch, o.crlPoll, hup, log)
	}

	tl, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	sl, err := net.Listen("tcp", o.staff)
	if err != nil {
		tl.Close()
		return err
	}
	inst, err := newInstitutionServer(o, svc, cert, log)
	if err != nil {
		tl.Close()
		sl.Close()
		return err
	}
	defer startWebhooks(ctx, svc, log)()
	terminals := &http.Server{Handler: svc.TerminalHandlerWith(log, backoffice.TerminalOptions{MaxIngest: o.maxIngest}), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	staffCfg := backoffice.StaffConfig{Log: log, Zone: loc, Hosts: staffHosts, VerifyPerClient: o.perClient, VerifyTotal: o.total}
	if o.oidc.Issuer != "" {
		if staffCfg.OIDC, err = backoffice.NewOIDC(ctx, o.oidc); err != nil {
			tl.Close()
			sl.Close()
			return fmt.Errorf("--oidc-issuer: %w", err)
		}
	}
	staff := svc.StaffHandler(staffCfg)
	staffSrv := &http.Server{Handler: staff, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	errc := make(chan error, 3)
	inst.serve(errc)
	go func() { errc <- terminals.ServeTLS(tl, "", "") }()
	go func() { errc <- staffSrv.Serve(sl) }()
	fmt.Fprintf(stdout, "kpe-backoffice ready: terminals https://%s, staff page http://%s/ (store: %s)\n", tl.Addr(), sl.Addr(), storeKind)
	if inst != nil {
		fmt.Fprintf(stdout, "institutions' API %s\n", inst.url())
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	terminals.Shutdown(shut)
	staffSrv.Shutdown(shut)
	inst.shutdown(shut)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// loadPool reads PEM certificates into a pool, and returns them too.
func loadPool(path string) (*x509.CertPool, []*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	p := x509.NewCertPool()
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		p.AddCert(c)
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return p, certs, nil
}
