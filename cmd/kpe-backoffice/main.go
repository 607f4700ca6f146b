// Command kpe-backoffice is the reference back office: terminals send their
// records over mutual TLS; staff verify printed codes on a web page, look
// at terminal status and alarms, and download the semester report.
//
//	kpe-backoffice serve [flags]       run the back office
//	kpe-backoffice lab-pki -dir DIR    make lab TLS keys (server, one terminal)
//
// Storage is an embedded bbolt file by default (-db FILE) or PostgreSQL
// (-pg DSN, or KPE_BACKOFFICE_PG). See docs/backoffice.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
)

const usage = `kpe-backoffice — reference back office for kpe-agent terminals

Usage:
  kpe-backoffice serve -sam-ca PEM -tls-cert PEM -tls-key PEM -client-ca PEM
        [-listen :8443] [-staff-listen 127.0.0.1:8080] [-db FILE | -pg DSN]
        [-accept-software] [-skew 5m] [-institution SITE=NAME ...]
  kpe-backoffice lab-pki -dir DIR [-terminal ID]
        make a lab TLS CA, a server certificate and one terminal's client certificate
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = serve(ctx, args[1:], stdout, stderr)
	case "lab-pki":
		err = labPKI(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "kpe-backoffice:", err)
		return 1
	}
	return 0
}

type multi map[string]string

func (m multi) String() string { return fmt.Sprint(map[string]string(m)) }
func (m multi) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("want SITE=INSTITUTION, got %q", s)
	}
	m[k] = v
	return nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":8443", "terminal API address (HTTPS with client certificates)")
	staff := fs.String("staff-listen", "127.0.0.1:8080", "staff page and API address (plain HTTP; keep it on the staff network)")
	dbPath := fs.String("db", "backoffice.db", "embedded store file (when -pg is not given)")
	pg := fs.String("pg", os.Getenv("KPE_BACKOFFICE_PG"), "PostgreSQL DSN (postgres://user:pass@host/db)")
	samCA := fs.String("sam-ca", "", "PEM: the CA SAM terminal certificates chain to")
	tlsCert := fs.String("tls-cert", "", "PEM: server certificate")
	tlsKey := fs.String("tls-key", "", "PEM: server key")
	clientCA := fs.String("client-ca", "", "PEM: the CA terminal client certificates chain to")
	soft := fs.Bool("accept-software", false, "accept software-signed records (demos without a SAM only)")
	skew := fs.Duration("skew", 5*time.Minute, "clock difference beyond which a terminal is told its clock is off")
	zone := fs.String("zone", "Asia/Jakarta", "time zone of the semester report")
	inst := multi{}
	fs.Var(inst, "institution", "SITE=INSTITUTION: report a site under an institution (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, v := range map[string]string{"-sam-ca": *samCA, "-tls-cert": *tlsCert, "-tls-key": *tlsKey, "-client-ca": *clientCA} {
		if v == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	roots, err := labpki.LoadPool(*samCA)
	if err != nil {
		return fmt.Errorf("-sam-ca: %w", err)
	}
	clients, err := labpki.LoadPool(*clientCA)
	if err != nil {
		return fmt.Errorf("-client-ca: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
	if err != nil {
		return fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return fmt.Errorf("-zone: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	var store backoffice.Store
	if *pg != "" {
		store, err = backoffice.OpenPostgres(ctx, *pg)
	} else {
		store, err = backoffice.OpenBolt(*dbPath)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := backoffice.New(store, backoffice.Config{CA: roots, AcceptSoftware: *soft, SkewTolerance: *skew, Institutions: inst})
	if err != nil {
		return err
	}

	tl, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sl, err := net.Listen("tcp", *staff)
	if err != nil {
		tl.Close()
		return err
	}
	terminals := &http.Server{Handler: svc.TerminalHandler(log), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	staffSrv := &http.Server{Handler: svc.StaffHandler(log, loc), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- terminals.ServeTLS(tl, "", "") }()
	go func() { errc <- staffSrv.Serve(sl) }()
	storeKind := "bbolt " + *dbPath
	if *pg != "" {
		storeKind = "PostgreSQL"
	}
	fmt.Fprintf(stdout, "kpe-backoffice ready: terminals https://%s, staff page http://%s/ (store: %s)\n", tl.Addr(), sl.Addr(), storeKind)
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	terminals.Shutdown(shut)
	staffSrv.Shutdown(shut)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func labPKI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab-pki", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the PEM files")
	terminal := fs.String("terminal", "lab-01", "terminal id (the client certificate's common name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	f, err := labpki.Write(*dir, *terminal)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "TLS CA %s\nserver %s %s\nterminal %s %s\n", f.TLSCA, f.ServerCert, f.ServerKey, f.TerminalCert, f.TerminalKey)
	return nil
}
