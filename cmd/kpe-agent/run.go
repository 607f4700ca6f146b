package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"kpe-agent/agent/api"
	"kpe-agent/agent/cards"
	"kpe-agent/agent/config"
	"kpe-agent/agent/daemon"
	"kpe-agent/agent/logging"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/internal/sdnotify"
	"kpe-agent/sync/outbox"
	"kpe-agent/sync/uploader"
)

// runOptions are the flags of run and check-config.
type runOptions struct {
	ConfigFile string
	Set        map[string]string
}

// defaultConfigFile is --config's default, shown in the usage; $KPE_CONFIG
// overrides it (clikit.EnvDefault) without being shown.
func defaultConfigFile() string { return config.DefaultFile() }

// setFlag is --set key=value, repeatable (a pflag.Value: a value may hold
// commas, --set api.allowed_origins=a,b).
type setFlag map[string]string

func (s setFlag) Type() string   { return "key=value" }
func (s setFlag) String() string { return "" }
func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	s[k] = val
	return nil
}

func (o runOptions) source() config.Source {
	return config.Source{File: o.ConfigFile, Set: o.Set, Environ: os.Environ()}
}

func runCommand(o runOptions, stderr io.Writer) int {
	// A SIGHUP (systemctl reload) must not kill the agent at any time,
	// and Go's default for a SIGHUP nobody catches is to exit: catch it
	// (run catches it earlier still, before parsing the command line;
	// runAgent does too, for its other callers).
	config.CatchReloadSignals()
	return runService(o, stderr)
}

func checkConfigCommand(o runOptions, stdout, stderr io.Writer) int {
	cfg, err := config.Load(o.source())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Every file run reads at start, read the same way: a secret with a
	// wrong mode, a key that does not match its certificate or a CA file
	// with no certificate fails here rather than at each service start.
	f, err := loadFiles(cfg)
	f.wipe()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (terminal %s)\n", cfg.File, cfg.Terminal.ID)
	return 0
}

// secrets are read from files once at start; they are never logged.
type secrets struct {
	token      []byte
	samCode    []byte
	ktpSecrets [][]byte
	nikKey     []byte
}

// startFiles is what the agent reads at start from the files the
// configuration names (the outbox aside): the secrets, the issuers' CA
// lists and the back office's TLS configuration.
type startFiles struct {
	secrets
	cards   cards.Options // BKNRoots, DukcapilRoots
	syncTLS *tls.Config   // nil unless sync.url is https
	apiTLS  *tls.Config   // nil unless api.tls_cert_file is set: the API serves HTTPS
}

// loadFiles reads every file the agent needs at start. It is both run's
// and check-config's: check-config accepts what run can start with. All
// problems are reported (joined), each naming its key.
func loadFiles(c *config.Config) (startFiles, error) {
	var f startFiles
	var errs []error
	var err error
	if f.secrets, err = loadSecrets(c); err != nil {
		errs = append(errs, err)
	}
	if f.cards.BKNRoots, err = loadPool("trust.bkn", c.Trust.BKN); err != nil {
		errs = append(errs, err)
	}
	if f.cards.DukcapilRoots, err = loadPool("trust.dukcapil", c.Trust.Dukcapil); err != nil {
		errs = append(errs, err)
	}
	if strings.HasPrefix(c.Sync.URL, "https://") {
		if f.syncTLS, err = syncTLS(c.Sync); err != nil {
			errs = append(errs, err)
		}
	}
	if c.API.TLS() {
		if f.apiTLS, err = apiTLS(c.API); err != nil {
			errs = append(errs, err)
		}
	}
	return f, errors.Join(errs...)
}

// wipe clears the secrets' bytes (check-config has no use for them).
func (s *secrets) wipe() {
	clear(s.token)
	clear(s.samCode)
	for _, b := range s.ktpSecrets {
		clear(b)
	}
	clear(s.nikKey)
}

// loadSecrets reads the secret files, reporting every problem.
func loadSecrets(c *config.Config) (secrets, error) {
	var s secrets
	var errs []error
	var err error
	if s.token, err = config.ReadToken(c.API.TokenFile); err != nil {
		errs = append(errs, fmt.Errorf("api.token_file: %w (kpe-agent install creates it)", err))
	}
	if f := c.SAM.ActivationCodeFile; f != "" {
		if s.samCode, err = config.ReadSecret(f); err != nil {
			errs = append(errs, fmt.Errorf("sam.activation_code_file: %w", err))
		}
	}
	if f := c.SAM.KTPSecretsFile; f != "" {
		if b, err := config.ReadSecret(f); err != nil {
			errs = append(errs, fmt.Errorf("sam.ktp_secrets_file: %w", err))
		} else if s.ktpSecrets = bytes.Fields(b); len(s.ktpSecrets) != 2 {
			clear(b)
			s.ktpSecrets = nil
			errs = append(errs, fmt.Errorf("sam.ktp_secrets_file: %s: want two lines (the two KTP-el installation secrets)", f))
		}
	}
	// The pseudonym key file only for the explicit fallback; with
	// ktpel.pseudonym: sam the SAM computes the pseudonyms (the daemon
	// warns at start about a key file set but unused).
	if f := c.SAM.NIKKeyFile; f != "" && c.KTPel.Pseudonym == config.PseudonymFile {
		if s.nikKey, err = config.ReadPseudonymKey(f); err != nil {
			errs = append(errs, fmt.Errorf("sam.nik_key_file: %w", err))
		}
	}
	return s, errors.Join(errs...)
}

func loadPool(key, file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, file)
	}
	return p, nil
}

// syncTLS is the terminal's mTLS client configuration.
func syncTLS(c config.Sync) (*tls.Config, error) {
	certPEM, err := os.ReadFile(c.ClientCert)
	if err != nil {
		return nil, fmt.Errorf("sync.client_cert: %w", err)
	}
	keyPEM, err := config.ReadSecret(c.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("sync.client_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("sync.client_cert / sync.client_key: %w", err)
	}
	roots, err := loadPool("sync.ca", c.CA)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// exitConfig is the exit code of an agent that cannot start with its
// configuration (EX_CONFIG of sysexits.h; systemd shows it as
// status=78/CONFIG). The unit does not restart the agent after it
// (RestartPreventExitStatus): only a technician's fix helps.
const exitConfig = 78

// configError marks an error of the configuration or of the files it
// names (secrets, certificates, trust lists, the log file): the agent
// cannot start until someone fixes them.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// runAgent runs the agent until ctx ends, then shuts down gracefully.
// ready is called once the agent serves its API.
//
// SIGHUP (reload) is caught from its first line to the process's exit
// (config.CatchReloadSignals): one arriving while the agent starts is
// kept and acted on once the configuration is watched; one arriving
// during the shutdown, or after an error, is ignored.
func runAgent(ctx context.Context, o runOptions, ready func()) error {
	config.CatchReloadSignals()
	src := o.source()
	cfg, err := config.Load(src)
	if err != nil {
		return configError{err}
	}
	store := config.NewStore(src, cfg)
	level := new(slog.LevelVar)
	lv, err := logging.ParseLevel(cfg.Log.Level)
	if err != nil {
		return configError{err}
	}
	level.Set(lv)
	log, closer, err := logging.New(cfg.Log, level)
	if err != nil {
		return configError{err}
	}
	defer closer.Close()
	err = serve(ctx, store, log, level, ready)
	if err != nil {
		log.Error("agent stopped with an error", "err", err)
	}
	return err
}

func serve(ctx context.Context, store *config.Store, log *slog.Logger, level *slog.LevelVar, ready func()) error {
	cfg := store.Current()
	files, err := loadFiles(cfg)
	if err != nil {
		return configError{err}
	}
	sec, copts := files.secrets, files.cards
	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{MaxRecords: cfg.Outbox.MaxRecords, MaxAge: cfg.Outbox.MaxAge,
		Retention: cfg.Outbox.Retention})
	if err != nil {
		return fmt.Errorf("outbox.path: %w", err)
	}
	defer ob.Close()
	metrics := daemon.NewMetrics()
	var up *uploader.Uploader
	if cfg.Sync.URL != "" {
		if up, err = uploader.New(ob, uploader.Config{URL: cfg.Sync.URL, TLS: files.syncTLS, Interval: cfg.Sync.Interval,
			Log: log.With("part", "sync"), OnSend: metrics.OnSend()}); err != nil {
			return err
		}
	}
	tr := pcsc.New(pcsc.Options{Logger: log.With("part", "pcsc")})
	defer tr.Close()
	d, err := daemon.New(daemon.Options{
		Config: store.Current, Transport: tr,
		Watch:  func(ctx context.Context) <-chan apdu.Event { return tr.Watch(ctx).Events },
		Outbox: ob, Uploader: up, Cards: copts, SAMCode: sec.samCode, KTPSecrets: sec.ktpSecrets, NIKKey: sec.nikKey,
		Log: log, Metrics: metrics, Version: version(),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if files.apiTLS != nil {
		ln = tls.NewListener(ln, files.apiTLS)
	}
	h := api.NewHandler(d, api.ServerConfig{Token: sec.token, Port: port, AllowedOrigins: cfg.API.AllowedOrigins,
		AllowedHosts: cfg.API.AllowedHosts, Log: log.With("part", "api"),
		Metrics: metrics.Handler(),
		Kiosk: api.KioskConfig{Enabled: cfg.Kiosk.Enabled, IdleTimeout: cfg.Kiosk.IdleTimeout, IdleWarning: cfg.Kiosk.IdleWarning,
			VerifyURL: cfg.Kiosk.VerifyURL, CardWait: cfg.Session.MaxWait},
		Loket: api.LoketConfig{Enabled: cfg.Loket.Enabled}, MaxEventStreams: cfg.API.MaxEventStreams})
	// Requests run under base, cancelled at shutdown so event streams end.
	base, stopRequests := context.WithCancel(context.Background())
	defer stopRequests()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go store.Watch(rctx, log, func(c *config.Config, ch config.Change) {
		if l, err := logging.ParseLevel(c.Log.Level); err == nil {
			level.Set(l)
		}
		if up != nil {
			up.SetInterval(c.Sync.Interval)
		}
	})

	runDone := make(chan error, 1)
	dctx, stopDaemon := context.WithCancel(context.Background())
	defer stopDaemon()
	go func() { runDone <- d.Run(dctx) }()
	log.Info("local API listening", "addr", ln.Addr().String(), "scheme", apiScheme(files))
	if cfg.Kiosk.Enabled {
		log.Info("kiosk page served", "url", apiScheme(files)+"://"+ln.Addr().String()+api.PathKiosk)
	}
	if cfg.Loket.Enabled {
		log.Info("counter screen served; open it with kpectl loket --open", "url", apiScheme(files)+"://"+ln.Addr().String()+api.PathLoket)
	}
	if ready != nil {
		ready()
	}
	// Type=notify (installer/linux/kpe-agent.service): systemd's start job
	// ends when the local API listens, not when the process has started.
	notifyManager(log, sdnotify.Ready+"\nSTATUS=local API listening on "+ln.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-srvErr:
		err = fmt.Errorf("local API: %w", err)
	case err = <-runDone:
		runDone <- err
	}
	log.Info("stopping")
	notifyManager(log, sdnotify.Stopping)
	// Workflows in flight finish (within session.shutdown_grace) before
	// the API closes, so their callers get their codes.
	stopDaemon()
	derr := <-runDone
	stopRequests()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		srv.Close()
	}
	return errors.Join(err, derr)
}

// notifyManager tells the service manager the agent's state when it
// listens ($NOTIFY_SOCKET; nothing otherwise). A failure is logged: the
// service manager then times the start out and says so.
func notifyManager(log *slog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn("could not notify the service manager", "err", err)
	}
}
