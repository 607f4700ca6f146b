package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/sync/backoffice"
)

// institutionCommand is `kpe-backoffice institution`: the institutions
// that use the institutions' API and webhooks (docs/institutions.md).
func institutionCommand(stdout io.Writer) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "institution",
		Short: "Register and manage the institutions (ASKES, Taspen, Bapertarum …) of the institutions' API",
		Long: `The institutions' back-office systems verify codes and receive the records of their services over
the institutions' API (serve --institution-listen) and by signed webhook. See docs/institutions.md.`,
	}
	sf.add(cmd.PersistentFlags())
	open := func(ctx context.Context) (backoffice.InstitutionStore, func() error, error) {
		st, _, err := openStore(ctx, sf.dbPath, sf.pg, backoffice.PGOptions{})
		if err != nil {
			return nil, nil, err
		}
		return st.(backoffice.InstitutionStore), st.Close, nil
	}
	with := func(f func(ctx context.Context, st backoffice.InstitutionStore, args []string) error) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			st, closeStore, err := open(c.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			return f(c.Context(), st, args)
		}
	}

	var services, certs []string
	var hook string
	var insecureHook bool
	add := &cobra.Command{
		Use:   "add NAME --service S [--service S] [--webhook-url URL [--insecure-webhook]] [--client-cert PEM]",
		Short: "Register an institution; prints its API key (and webhook secret) once",
		Args:  cobra.ExactArgs(1),
		RunE: with(func(ctx context.Context, st backoffice.InstitutionStore, args []string) error {
			key, stored := backoffice.NewAPIKey(time.Now())
			in := backoffice.Institution{Name: args[0], Services: services, Enabled: true, Keys: []backoffice.APIKey{stored}, WebhookURL: hook, InsecureWebhook: insecureHook}
			for _, path := range certs {
				fp, err := certFingerprint(path)
				if err != nil {
					return fmt.Errorf("--client-cert: %w", err)
				}
				in.Certs = append(in.Certs, fp)
			}
			if hook != "" {
				in.WebhookSecret = backoffice.NewWebhookSecret()
			}
			if err := st.AddInstitution(ctx, in); err != nil {
				if errors.Is(err, backoffice.ErrInstitution) {
					return clikit.UsageError{Err: err}
				}
				return err
			}
			fmt.Fprintf(stdout, "institution %s registered for %s\n", in.Name, strings.Join(in.Services, ", "))
			fmt.Fprintf(stdout, "API key: %s\n", key)
			if hook != "" {
				fmt.Fprintf(stdout, "webhook secret: %s\n", in.WebhookSecret)
			}
			fmt.Fprintln(stdout, "Give them to the institution now: they are stored hashed or not shown again.")
			return nil
		}),
	}
	add.Flags().StringArrayVar(&services, "service", nil, "a record service the institution may see (repeatable; at least one)")
	add.Flags().StringVar(&hook, "webhook-url", "", "https URL that receives the institution's records (signed webhooks)")
	add.Flags().BoolVar(&insecureHook, "insecure-webhook", false, "allow an http:// --webhook-url (a lab only: the records travel in clear)")
	add.Flags().StringArrayVar(&certs, "client-cert", nil, "PEM: a client certificate the institution authenticates with (repeatable)")
	_ = add.MarkFlagRequired("service")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the institutions (no keys or secrets)",
		Args:  cobra.NoArgs,
		RunE: with(func(ctx context.Context, st backoffice.InstitutionStore, _ []string) error {
			all, err := st.Institutions(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSERVICES\tENABLED\tKEYS\tCERTIFICATES\tWEBHOOK")
			for _, in := range all {
				live := 0
				for _, k := range in.Keys {
					if k.Expires.IsZero() || now.Before(k.Expires) {
						live++
					}
				}
				hook := in.WebhookURL
				if hook == "" {
					hook = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%d\t%s\n", in.Name, strings.Join(in.Services, ","), in.Enabled, live, len(in.Certs), hook)
			}
			return w.Flush()
		}),
	}

	var grace time.Duration
	rotate := &cobra.Command{
		Use:   "rotate-key NAME [--grace DURATION]",
		Short: "Give an institution a new API key; the old keys stop now, or after --grace",
		Args:  cobra.ExactArgs(1),
		RunE: with(func(ctx context.Context, st backoffice.InstitutionStore, args []string) error {
			if grace < 0 {
				return clikit.Usagef("--grace: %v is negative", grace)
			}
			now := time.Now()
			key, stored := backoffice.NewAPIKey(now)
			if err := st.RotateInstitutionKey(ctx, args[0], stored, now.Add(grace)); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "API key: %s\n", key)
			if grace > 0 {
				fmt.Fprintf(stdout, "The old keys of %s work until %s.\n", args[0], now.Add(grace).UTC().Format(time.RFC3339))
			} else {
				fmt.Fprintf(stdout, "The old keys of %s no longer work.\n", args[0])
			}
			return nil
		}),
	}
	rotate.Flags().DurationVar(&grace, "grace", 0, "how long the old keys keep working (0: they stop now)")

	enable := func(use, short string, on bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: with(func(ctx context.Context, st backoffice.InstitutionStore, args []string) error {
				if err := st.SetInstitutionEnabled(ctx, args[0], on); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "institution %s %sd\n", args[0], use)
				return nil
			}),
		}
	}
	cmd.AddCommand(add, list, rotate,
		enable("disable", "Refuse an institution's requests and stop its webhooks", false),
		enable("enable", "Accept an institution's requests and webhooks again", true))
	return cmd
}

// certFingerprint is SHA-256 of the DER of the first certificate in a
// PEM file.
func certFingerprint(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return [32]byte{}, fmt.Errorf("%s: no PEM certificate", path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return [32]byte{}, fmt.Errorf("%s: %w", path, err)
		}
		return sha256.Sum256(blk.Bytes), nil
	}
}

// institutionServer is serve's third listener: the institutions' API over
// HTTPS with the server certificate of --tls-cert, and client
// certificates verified against --institution-client-ca when given.
type institutionServer struct {
	l   net.Listener
	srv *http.Server
}

// newInstitutionServer opens the listener; nil when --institution-listen
// is empty.
func newInstitutionServer(o serveOptions, svc *backoffice.Service, cert tls.Certificate, log *slog.Logger) (*institutionServer, error) {
	if o.instListen == "" {
		return nil, nil
	}
	h, err := svc.InstitutionHandler(backoffice.InstitutionConfig{Log: log})
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.instClientCA != "" {
		pool, _, err := loadPool(o.instClientCA)
		if err != nil {
			return nil, fmt.Errorf("--institution-client-ca: %w", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	l, err := net.Listen("tcp", o.instListen)
	if err != nil {
		return nil, err
	}
	return &institutionServer{l: l, srv: &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute}}, nil
}

func (s *institutionServer) serve(errc chan<- error) {
	if s != nil {
		go func() { errc <- s.srv.ServeTLS(s.l, "", "") }()
	}
}

func (s *institutionServer) shutdown(ctx context.Context) {
	if s != nil {
		s.srv.Shutdown(ctx)
	}
}

func (s *institutionServer) url() string {
	if s == nil {
		return ""
	}
	return "https://" + s.l.Addr().String() + backoffice.PathInstitution
}

// startWebhooks runs the webhook dispatcher until the returned stop,
// which waits for it (before the store closes).
func startWebhooks(ctx context.Context, svc *backoffice.Service, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.RunWebhooks(ctx, backoffice.WebhookConfig{Log: log}); err != nil {
			log.Error("webhooks", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}
