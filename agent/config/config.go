// Package config is the agent's configuration: the schema below, loaded by
// viper from the YAML file, KPE_* environment variables and flags, strictly
// validated, and published as immutable snapshots (configs/agent.yaml
// documents every key).
package config

import "time"

// Config is one immutable snapshot of the configuration. Never modify a
// Config after Load returned it; a reload makes a new one.
type Config struct {
	Terminal    Terminal    `mapstructure:"terminal"`
	Readers     Readers     `mapstructure:"readers"`
	SAM         SAM         `mapstructure:"sam"`
	KTPel       KTPel       `mapstructure:"ktpel"`
	Trust       Trust       `mapstructure:"trust"`
	Fingerprint Fingerprint `mapstructure:"fingerprint"`
	Session     Session     `mapstructure:"session"`
	Services    []string    `mapstructure:"services"`
	Outbox      Outbox      `mapstructure:"outbox"`
	Sync        Sync        `mapstructure:"sync"`
	API         API         `mapstructure:"api"`
	Kiosk       Kiosk       `mapstructure:"kiosk"`
	Loket       Loket       `mapstructure:"loket"`
	Renewal     Renewal     `mapstructure:"renewal"`
	EWallet     EWallet     `mapstructure:"ewallet"`
	Log         Log         `mapstructure:"log"`
	Messages    Messages    `mapstructure:"messages"`

	// File is the configuration file this snapshot was read from ("" when
	// none); not a key.
	File string `mapstructure:"-"`
}

// Terminal identifies this terminal in records.
type Terminal struct {
	ID       string `mapstructure:"id"`       // terminal ID (must match the mTLS client certificate's CN)
	Site     string `mapstructure:"site"`     // site (Puskesmas, hospital, Taspen office) ID
	Language string `mapstructure:"language"` // id or en: the language of events and logs for the clerk
	// Lab: this terminal works with the virtual card lab (lab trust
	// lists and secrets are accepted). Never on a production terminal.
	Lab bool `mapstructure:"lab"`
}

// Readers assigns PC/SC readers to roles. Patterns are path.Match globs
// against the reader name ("*" matches any run of characters).
type Readers struct {
	Card   []string `mapstructure:"card"`   // card readers; empty: every reader not otherwise assigned
	SAM    []string `mapstructure:"sam"`    // SAM readers; empty: found by probing (selecting the SAM application)
	Ignore []string `mapstructure:"ignore"` // readers the agent never touches
}

// SAM holds the paths of the SAM's secrets (files readable by the agent
// only: mode 0600 or 0400, or 0640 with the agent's group, never the API
// token readers' group; see ReadSecret).
type SAM struct {
	ActivationCodeFile string `mapstructure:"activation_code_file"`
	KTPSecretsFile     string `mapstructure:"ktp_secrets_file"` // two lines: the KTP-el installation secrets
	// NIKKeyFile holds the key of the KTP-el pseudonym fallback
	// (ktpel.pseudonym: file), at least 32 bytes; unused with the default
	// ktpel.pseudonym: sam.
	NIKKeyFile string `mapstructure:"nik_key_file"`
}

// KTPel configures the KTP-el records.
type KTPel struct {
	// Pseudonym is where the KTP-el record's pseudonyms (its subject, from
	// the NIK, and its card serial, from the chip UID) are computed:
	// PseudonymSAM (the default), or PseudonymFile, the explicit fallback
	// with the key of sam.nik_key_file on the host.
	Pseudonym string `mapstructure:"pseudonym"`
}

// Values of ktpel.pseudonym.
const (
	PseudonymSAM  = "sam"
	PseudonymFile = "file"
)

// Trust holds the issuers' CA lists (PEM).
type Trust struct {
	BKN      string `mapstructure:"bkn"`
	Dukcapil string `mapstructure:"dukcapil"`
}

// Fingerprint configures the sensor.
type Fingerprint struct {
	Sensor         string        `mapstructure:"sensor"`  // lab, command, none
	LabURL         string        `mapstructure:"lab_url"` // sensor = lab: the card lab's control URL
	Command        []string      `mapstructure:"command"` // sensor = command: the capture program and its arguments
	Timeout        time.Duration `mapstructure:"timeout"` // waiting for a finger
	ConfirmLastTry bool          `mapstructure:"confirm_last_try"`
}

// Session bounds each step of a card session.
type Session struct {
	ReadTimeout   time.Duration `mapstructure:"read_timeout"`   // recognise, authenticate and read the card
	SignTimeout   time.Duration `mapstructure:"sign_timeout"`   // SAM signature and commit
	MaxWait       time.Duration `mapstructure:"max_wait"`       // longest wait for a card an API request may ask for
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"` // finish a session in flight on shutdown
}

// Outbox is the local store of records.
type Outbox struct {
	Path       string        `mapstructure:"path"`
	MaxRecords int           `mapstructure:"max_records"`
	MaxAge     time.Duration `mapstructure:"max_age"`
	// Retention: acknowledged records are pruned this long after the
	// back office acknowledged them (at least MinOutboxRetention).
	Retention time.Duration `mapstructure:"retention"`
}

// Sync is the link to the back office.
type Sync struct {
	URL        string        `mapstructure:"url"` // "" disables syncing
	Interval   time.Duration `mapstructure:"interval"`
	ClientCert string        `mapstructure:"client_cert"` // PEM certificate of this terminal (mTLS)
	ClientKey  string        `mapstructure:"client_key"`  // PEM key (secret file)
	CA         string        `mapstructure:"ca"`          // PEM roots for the back office's certificate
}

// API is the local API.
type API struct {
	Listen         string   `mapstructure:"listen"`          // host:port; loopback unless AllowRemote
	AllowRemote    bool     `mapstructure:"allow_remote"`    // allow a non-loopback Listen
	TokenFile      string   `mapstructure:"token_file"`      // bearer token (secret file)
	AllowedOrigins []string `mapstructure:"allowed_origins"` // browser origins allowed to call the API
	AllowedHosts   []string `mapstructure:"allowed_hosts"`   // extra Host names besides loopback ones
	// TLSCertFile and TLSKeyFile are the API's certificate (PEM) and its
	// key (PEM, a secret file): set, the API serves HTTPS only. Required
	// with AllowRemote: the token never crosses the network in clear.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// MaxEventStreams caps the open event streams (GET /v1/events): one
	// more is 429 until one closes.
	MaxEventStreams int `mapstructure:"max_event_streams"`
}

// TLS reports whether the API serves HTTPS (api.tls_cert_file set).
func (a API) TLS() bool { return a.TLSCertFile != "" }

// Kiosk is the self-service kiosk the agent serves at /kiosk/ (the
// e-Kiosk page for card holders, same-origin with the local API).
type Kiosk struct {
	Enabled     bool          `mapstructure:"enabled"`      // serve /kiosk/ and accept its credential
	IdleTimeout time.Duration `mapstructure:"idle_timeout"` // the page returns to its attract screen after this long untouched
	IdleWarning time.Duration `mapstructure:"idle_warning"` // and warns this long before (less than idle_timeout)
	// VerifyURL is the back office's verify page: the receipt's QR code
	// opens <VerifyURL>?code=<code>; "" shows no QR code.
	VerifyURL string `mapstructure:"verify_url"`
}

// Loket is the counter screen the agent serves at /loket/ for the clerk
// at this PC whose own system has no integration (docs/loket.md).
type Loket struct {
	Enabled bool `mapstructure:"enabled"` // serve /loket/ and its login links (kpectl loket), and accept its credential
}

// Renewal is the card data renewal at the kiosk and the counter
// (docs/renewal.md): after a KPE holder's fingerprint matched, the agent
// asks the back office whether new data is staged for the card and offers
// to write it.
type Renewal struct {
	// Enabled asks for offers; it needs a back office (sync.url), so the
	// default (true) means "on when a back office is configured" (On).
	Enabled bool `mapstructure:"enabled"`
	// OfferTimeout bounds one offer request to the back office (at most
	// MaxOfferTimeout); past it the holder is told nothing is available.
	OfferTimeout time.Duration `mapstructure:"offer_timeout"`
}

// MaxOfferTimeout bounds renewal.offer_timeout: the holder waits at the
// kiosk meanwhile.
const MaxOfferTimeout = time.Minute

// RenewalOn says the terminal asks for renewal offers: renewal.enabled
// and a back office configured (sync.url).
func (c *Config) RenewalOn() bool { return c.Renewal.Enabled && c.Sync.URL != "" }

// EWallet is the KPE e-wallet at this terminal (docs/ewallet.md):
// payments at the counter (POST /v1/pay), the balance and "update saldo"
// at the kiosk. Amounts are whole rupiah.
type EWallet struct {
	// Enabled takes payments and shows balances; it needs MerchantID.
	Enabled bool `mapstructure:"enabled"`
	// MerchantID names this terminal's merchant in payment records and
	// in the bank's settlement (1 to 32 characters of a-z, 0-9, -, _, .).
	MerchantID string `mapstructure:"merchant_id"`
	// MerchantName is shown on receipts and settlement files.
	MerchantName string `mapstructure:"merchant_name"`
	// MaxPayment is the largest single payment (default: the balance
	// limit, so only the card's balance bounds it).
	MaxPayment int `mapstructure:"max_payment"`
	// FingerprintAbove: a payment of more than this needs the holder's
	// fingerprint to match on the card (0: every payment needs it).
	FingerprintAbove int `mapstructure:"fingerprint_above"`
	// MaxBalance is the largest balance a top-up may bring the card to
	// (Bank Indonesia's limit for registered e-money; the card enforces
	// its own maximum too).
	MaxBalance int `mapstructure:"max_balance"`
	// TopUp offers "update saldo" at the kiosk and the counter; it needs a
	// back office (sync.url).
	TopUp bool `mapstructure:"topup"`
	// TopUpTimeout bounds one request for top-up authorisations to the
	// back office (at most MaxOfferTimeout).
	TopUpTimeout time.Duration `mapstructure:"topup_timeout"`
}

// E-wallet defaults and bounds (docs/ewallet.md names their sources).
const (
	// DefaultMaxBalance is Bank Indonesia's balance limit for registered
	// chip e-money since 1 July 2022.
	DefaultMaxBalance = 20_000_000
	// DefaultFingerprintAbove is the suggested fingerprint threshold.
	DefaultFingerprintAbove = 500_000
	// MaxAmount is the largest amount a purse command carries (uint32).
	MaxAmount = 1<<32 - 1
)

// EWalletOn says the terminal takes payments.
func (c *Config) EWalletOn() bool { return c.EWallet.Enabled }

// TopUpOn says the terminal offers "update saldo": the e-wallet on,
// ewallet.topup, and a back office configured (sync.url).
func (c *Config) TopUpOn() bool { return c.EWallet.Enabled && c.EWallet.TopUp && c.Sync.URL != "" }

// Log configures logging.
type Log struct {
	Level    string `mapstructure:"level"`       // debug, info, warn, error
	File     string `mapstructure:"file"`        // "" logs to standard error (the service manager's journal)
	MaxSize  int    `mapstructure:"max_size_mb"` // rotate the file before it exceeds this many MB (1..1024)
	MaxFiles int    `mapstructure:"max_files"`   // files kept, the current one included (1..100)
}

// Messages overrides clerk-facing messages by symbolic code, per language:
// messages.id.no-card: "Silakan masukkan kartu".
type Messages struct {
	ID map[string]string `mapstructure:"id"`
	EN map[string]string `mapstructure:"en"`
}
