package fleet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
)

// Local is a back office run in this process for a fleet run: the
// PostgreSQL store, the terminal API on a TLS listener that requires and
// verifies client certificates of its terminal CA, and the staff listener
// (plain HTTP on loopback, like kpe-backoffice serve's), both on
// 127.0.0.1 with ports of the system's choosing.
type Local struct {
	Store    *backoffice.PGStore
	Service  *backoffice.Service
	URL      string // terminal API
	StaffURL string
	// StaffUser and StaffPassword are a verifier account on the staff
	// listener, for the prober (staff sign-in, docs/staff-signin.md).
	StaffUser, StaffPassword string
	// The lab PKI: the TLS CA (server and terminal certificates) and the
	// SAM CA.
	TLSCA, SAMCA *labpki.CA

	servers []*http.Server
}

// LocalOptions configures StartLocal.
type LocalOptions struct {
	// VerifyPerClient and VerifyTotal are the staff listener's
	// verification limits (default: 1000 a second, burst 1000, both:
	// the prober is one client and must not be held to a clerk's limit).
	VerifyPerClient, VerifyTotal backoffice.Limit
	// Wrap, when set, wraps the terminal API's handler: a load balancer
	// or an overloaded node in front of the back office (tests answer
	// 429 or 503 with it).
	Wrap func(http.Handler) http.Handler
	// MaxIngest is the back office's admission limit (kpe-backoffice
	// serve --max-ingest): 0 its default, below 0 none.
	MaxIngest int
	// Pools sizes the store's connection pools (--pg-conns,
	// --pg-staff-conns).
	Pools backoffice.PGOptions
	// Log, when set, gets the terminal API's errors (an ingest that
	// failed: why a batch was answered store-unavailable).
	Log *slog.Logger
	// PKI, when set, is used instead of a fresh one.
	PKI *PKI
}

// StartLocal starts a back office on the PostgreSQL database dsn (its
// migrations run) with a fresh lab PKI.
func StartLocal(ctx context.Context, dsn string, o LocalOptions) (*Local, error) {
	pki := o.PKI
	if pki == nil {
		var err error
		if pki, err = NewPKI(); err != nil {
			return nil, err
		}
	}
	tlsCA, samCA, srvCert := pki.TLSCA, pki.SAMCA, pki.Server
	st, err := backoffice.OpenPostgresWith(ctx, dsn, o.Pools)
	if err != nil {
		return nil, fmt.Errorf("fleet: back office store: %w", err)
	}
	svc, err := backoffice.New(st, backoffice.Config{CA: samCA.Pool()})
	if err != nil {
		st.Close()
		return nil, err
	}
	l := &Local{Store: st, Service: svc, TLSCA: tlsCA, SAMCA: samCA}
	l.StaffUser, l.StaffPassword = "fleet-prober", rand.Text()
	err = svc.AddAccount(ctx, backoffice.NewAccount{Name: l.StaffUser, Roles: []backoffice.Role{backoffice.RoleVerifier}, Password: l.StaffPassword}, backoffice.Actor{})
	if errors.Is(err, backoffice.ErrAccountExists) { // a database of an earlier run
		err = svc.SetPassword(ctx, l.StaffUser, l.StaffPassword, backoffice.Actor{})
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("fleet: the prober's staff account: %w", err)
	}
	lim := backoffice.Limit{Rate: 1000, Burst: 1000}
	if o.VerifyPerClient.Rate == 0 {
		o.VerifyPerClient = lim
	}
	if o.VerifyTotal.Rate == 0 {
		o.VerifyTotal = lim
	}

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	th := svc.TerminalHandlerWith(o.Log, backoffice.TerminalOptions{MaxIngest: o.MaxIngest})
	if o.Wrap != nil {
		th = o.Wrap(th)
	}
	term := &http.Server{Handler: th, ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: tlsCA.Pool(),
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tl.Close()
		st.Close()
		return nil, err
	}
	staff := &http.Server{Handler: svc.StaffHandler(backoffice.StaffConfig{VerifyPerClient: o.VerifyPerClient, VerifyTotal: o.VerifyTotal}),
		ReadHeaderTimeout: 30 * time.Second}
	l.servers = []*http.Server{term, staff}
	go term.ServeTLS(tl, "", "")
	go staff.Serve(sl)
	l.URL = "https://" + tl.Addr().String()
	l.StaffURL = "http://" + sl.Addr().String()
	return l, nil
}

// Config is a fleet configuration aimed at this back office (its URLs,
// PKI and database size), to be completed with the fleet's size and
// scenario.
func (l *Local) Config() Config {
	return Config{URL: l.URL, StaffURL: l.StaffURL, StaffUser: l.StaffUser, StaffPassword: l.StaffPassword, Roots: l.TLSCA.Pool(), TerminalCA: l.TLSCA, SAMCA: l.SAMCA,
		DBSize: func(ctx context.Context) (int64, error) {
			var n int64
			err := l.Store.Pool().QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
			return n, err
		}}
}

// Close stops the listeners and closes the store.
func (l *Local) Close() error {
	var errs []error
	for _, s := range l.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.Shutdown(ctx))
		cancel()
	}
	errs = append(errs, l.Store.Close())
	return errors.Join(errs...)
}
