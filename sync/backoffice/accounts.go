package backoffice

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Staff accounts: who may sign in on the staff listener, with which
// roles (principal.go), and the audit log of what they did
// (docs/staff-signin.md).

// Account is a staff account.
type Account struct {
	Name     string
	Roles    []Role
	Services []string // the services an institution account sees (Principal.Services)
	Disabled bool
	// PasswordHash is the argon2id hash in PHC form (HashPassword), ""
	// for an account that signs in through OIDC only.
	PasswordHash string
	OIDC         bool // may sign in through the institution's OpenID Connect provider
	Created      time.Time
	// Failures counts the consecutive failed sign-ins since the last
	// success or lock-out; LockedUntil is when a lock-out ends.
	Failures    int
	LockedUntil time.Time
	// SessionsAfter ends every session signed in before it (set by a
	// new password, disable, enable and a change of roles).
	SessionsAfter time.Time
	// OIDCIssuer and OIDCSubject bind the account to one identity at the
	// OIDC provider (the ID token's iss and sub): bound at the first OIDC
	// sign-in, or given at creation (NewAccount.OIDCSubject; the issuer
	// is then filled at the first sign-in). "": not bound yet.
	OIDCIssuer  string
	OIDCSubject string
}

// Principal is who a request signed in as this account acts for.
func (a *Account) Principal() *Principal {
	return &Principal{Account: a.Name, Roles: slices.Clone(a.Roles), Services: slices.Clone(a.Services)}
}

// Sign-in limits: MaxLoginFailures consecutive failures lock an account
// for LockoutDuration.
const (
	MaxLoginFailures = 5
	LockoutDuration  = 15 * time.Minute
	MaxPassword      = 256 // bytes; argon2 takes any length, a bound keeps requests cheap
	MinPassword      = 12
)

// Errors of accounts.
var (
	// ErrAccount: an account that breaks CheckAccount's rules, or a
	// password that breaks CheckPassword's.
	ErrAccount = errors.New("backoffice: account not acceptable")
	// ErrAccountExists: an account of that name exists already.
	ErrAccountExists = errors.New("backoffice: account exists already")
)

// AccountError is an account or password that breaks CheckAccount's or
// CheckPassword's rules: errors.Is(err, ErrAccount); Reason names the
// rule broken (the Reason* constants), so a page can say it in the
// user's language (staff.accounts.err.<reason>).
type AccountError struct {
	Reason string
	msg    string
}

func (e *AccountError) Error() string        { return ErrAccount.Error() + ": " + e.msg }
func (e *AccountError) Is(target error) bool { return target == ErrAccount }

// The rules an account or password can break (AccountError.Reason).
const (
	ReasonName          = "name"
	ReasonNoRole        = "no-role"
	ReasonBadRole       = "bad-role"
	ReasonRoleTwice     = "role-twice"
	ReasonBadService    = "bad-service"
	ReasonNeedsService  = "needs-service"
	ReasonServiceScope  = "service-scope"
	ReasonServicesMixed = "services-mixed"
	ReasonOIDCSubject   = "oidc-subject"
	ReasonNoMethod      = "no-method"
	ReasonPasswordUTF8  = "password-utf8"
	ReasonPasswordShort = "password-short"
	ReasonPasswordLong  = "password-long"
)

func accountErr(reason, format string, args ...any) error {
	return &AccountError{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{1,63}$`)
var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// CheckAccount checks an account's fields: the name is 2..64 characters
// of a-z, 0-9, '.', '_', '@', '-' starting with a letter or digit (an
// e-mail address fits, lower case); at least one valid role, none twice;
// services (lower-case names) required when the account holds only
// institution, refused otherwise (with no institution role, and with
// institution beside an unscoped role, which would see every service
// anyway); a password hash or OIDC (or both); an OIDC subject only with
// OIDC, at most 255 bytes of printable ASCII.
func CheckAccount(a *Account) error {
	if !userName.MatchString(a.Name) {
		return accountErr(ReasonName, "user name %q: 2..64 characters of a-z 0-9 . _ @ -, starting with a letter or digit", a.Name)
	}
	if len(a.Roles) == 0 {
		return accountErr(ReasonNoRole, "%s: at least one role (%s)", a.Name, roleList())
	}
	for i, r := range a.Roles {
		if !r.Valid() {
			return accountErr(ReasonBadRole, "role %q: want one of %s", r, roleList())
		}
		if slices.Contains(a.Roles[:i], r) {
			return accountErr(ReasonRoleTwice, "role %q twice", r)
		}
	}
	for _, s := range a.Services {
		if !serviceName.MatchString(s) {
			return accountErr(ReasonBadService, "service %q: a lower-case service name such as askes", s)
		}
	}
	p := a.Principal()
	switch {
	case p.Scoped() && len(a.Services) == 0:
		return accountErr(ReasonNeedsService, "%s holds only the institution role: name its services (--service askes)", a.Name)
	case !p.Has(RoleInstitution) && len(a.Services) > 0:
		return accountErr(ReasonServiceScope, "%s: services scope the institution role only", a.Name)
	case !p.Scoped() && len(a.Services) > 0:
		return accountErr(ReasonServicesMixed, "%s: services scope an account holding the institution role alone; with another role it sees every service", a.Name)
	case a.OIDCSubject != "" && (!a.OIDC || len(a.OIDCSubject) > 255 || strings.Trim(a.OIDCSubject, printableASCII) != ""):
		return accountErr(ReasonOIDCSubject, "%s: an OIDC subject needs OIDC and is at most 255 bytes of printable ASCII", a.Name)
	case a.PasswordHash == "" && !a.OIDC:
		return accountErr(ReasonNoMethod, "%s signs in neither with a password nor through OIDC", a.Name)
	}
	return nil
}

const printableASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// CheckPassword checks a new password: MinPassword..MaxPassword bytes of
// valid UTF-8, not blank.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return accountErr(ReasonPasswordUTF8, "the password is not valid UTF-8")
	case len(pw) < MinPassword:
		return accountErr(ReasonPasswordShort, "the password has %d bytes, at least %d", len(pw), MinPassword)
	case len(pw) > MaxPassword:
		return accountErr(ReasonPasswordLong, "the password has %d bytes, at most %d", len(pw), MaxPassword)
	}
	return nil
}

// HashParams are argon2id's cost parameters.
type HashParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultHashParams is RFC 9106's second recommended option (section
// 4): argon2id with t=3 passes, 64 MiB of memory and p=4 lanes, a 128-bit
// salt and a 256-bit tag. The back office hashes only at sign-in and on
// account changes, so the 64 MiB is taken rarely and briefly.
var DefaultHashParams = HashParams{Time: 3, Memory: 64 << 10, Threads: 4}

const (
	saltLen = 16
	keyLen  = 32
)

// HashPassword hashes pw with argon2id under p, in the PHC string format:
// $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH (unpadded standard base64).
func HashPassword(pw string, p HashParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return phc(p, salt, argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)), nil
}

func phc(p HashParams, salt, key []byte) string {
	b := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b.EncodeToString(salt), b.EncodeToString(key))
}

// ErrHash: a stored hash that is not an argon2id PHC string this code
// makes.
var ErrHash = errors.New("backoffice: password hash not understood")

// The costliest parameters a stored hash may ask for: four times the
// memory and over six times the passes of DefaultHashParams. A hash
// beyond them (planted in the store, or from a misconfiguration) is
// refused rather than allowed to take a node's memory at every sign-in.
const (
	maxHashMemory = 256 << 10 // KiB
	maxHashTime   = 20
)

// parseHash splits a PHC argon2id string.
func parseHash(h string) (p HashParams, salt, key []byte, err error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, ErrHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxHashMemory || p.Time > maxHashTime {
		return p, nil, nil, ErrHash
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, ErrHash
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, ErrHash
	}
	return p, salt, key, nil
}

// CheckPasswordHash reports whether pw matches the PHC hash h (constant
// time over the derived key).
func CheckPasswordHash(h, pw string) (bool, error) {
	p, salt, key, err := parseHash(h)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// AuditEntry is one line of the audit log: who did what, when, from
// where, with which outcome.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`   // the account ("" when nobody is signed in)
	Action  string    `json:"action"`  // one of the Audit* constants
	Target  string    `json:"target"`  // the code, semester, account or alarm acted on
	Client  string    `json:"client"`  // the client's address
	Outcome string    `json:"outcome"` // ok, failed, locked, refused, started (AuditOutcomeStarted), or a verdict
	Detail  string    `json:"detail,omitempty"`
}

// Audit actions.
const (
	AuditVerify        = "verify"
	AuditReport        = "report-download"
	AuditSignIn        = "sign-in"
	AuditSignOut       = "sign-out"
	AuditAccountAdd    = "account-add"
	AuditAccountRoles  = "account-roles"
	AuditAccountPasswd = "account-password"
	AuditAccountOff    = "account-disable"
	AuditAccountOn     = "account-enable"
	AuditAlarmAck      = "alarm-ack"
	AuditRenewalImport = "renewal-import" // outcome started (target: the file), then ok (target: the import id; detail: how many updates), refused (detail: how many problems) or failed
)

// AuditActions are the audit log's actions.
var AuditActions = []string{AuditSignIn, AuditSignOut, AuditVerify, AuditReport, AuditAlarmAck, AuditRenewalImport,
	AuditAccountAdd, AuditAccountRoles, AuditAccountPasswd, AuditAccountOff, AuditAccountOn}

// AuditQuery pages the audit log, newest first: entries with an id
// below Before (0: from the newest), at most Limit, and only those that
// match every filter given: Account (the actor or the target: a
// sign-in, made before anyone acts, names the account as its target),
// Action, and At in [From, To) (zero: unbounded).
type AuditQuery struct {
	Before   int64
	Limit    int
	Account  string
	Action   string
	From, To time.Time
}

// matches reports whether e passes q's filters.
func (q AuditQuery) matches(e *AuditEntry) bool {
	return (q.Account == "" || e.Actor == q.Account || e.Target == q.Account) &&
		(q.Action == "" || e.Action == q.Action) &&
		(q.From.IsZero() || !e.At.Before(q.From)) &&
		(q.To.IsZero() || e.At.Before(q.To))
}

// AccountStore keeps staff accounts, their sign-in failures, the
// sessions and the audit log. Both back-office stores implement it, so
// several back-office nodes on one database share accounts, lock-outs
// and sessions.
type AccountStore interface {
	// CreateAccount stores a new account (ErrAccountExists).
	CreateAccount(ctx context.Context, a *Account) error
	// Account is the account of that name (ErrNotFound).
	Account(ctx context.Context, name string) (*Account, error)
	// Accounts lists every account by name.
	Accounts(ctx context.Context) ([]Account, error)
	// UpdateAccount changes an account atomically: f gets the stored
	// account and changes it in place (ErrNotFound; f's error aborts).
	UpdateAccount(ctx context.Context, name string, f func(*Account) error) error
	// LoginFailed counts a failed sign-in of the account at now: at
	// MaxLoginFailures consecutive failures it is locked until
	// now+LockoutDuration and the count starts again. It returns the
	// lock's end (zero when not locked). An unknown name is counted too,
	// in a bucket of its hash (unknownBucket), so that every failure
	// writes to the store whether the name exists or not.
	LoginFailed(ctx context.Context, name string, now time.Time) (time.Time, error)
	// LoginSucceeded clears the account's failure count in one atomic
	// step, only if the account at now is not locked, not disabled and
	// still has the password hash the sign-in checked: false (and nothing
	// changed) otherwise, or when there is no such account.
	LoginSucceeded(ctx context.Context, name, hash string, now time.Time) (bool, error)

	// SessionFind, SessionCommit, SessionDelete keep scs sessions:
	// token → data until expiry. SessionFind does not find a session
	// expired at now.
	SessionFind(ctx context.Context, token string, now time.Time) ([]byte, bool, error)
	SessionCommit(ctx context.Context, token string, data []byte, expiry time.Time) error
	SessionDelete(ctx context.Context, token string) error

	// AppendAudit adds e to the audit log (append-only) and sets its id.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// AuditLog pages the audit log, newest first.
	AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// unknownBucket is the bucket an unknown name's failures are counted in:
// the first two bytes of its SHA-256 (at most 65536 buckets).
func unknownBucket(name string) int {
	h := sha256.Sum256([]byte(name))
	return int(h[0])<<8 | int(h[1])
}

// loginAllowed is LoginSucceeded's rule on one account.
func loginAllowed(a *Account, hash string, now time.Time) bool {
	return !a.Disabled && a.PasswordHash != "" && a.PasswordHash == hash && !a.LockedUntil.After(now)
}

// lockAfterFailure is LoginFailed's rule on one account, shared by the
// stores.
func lockAfterFailure(a *Account, now time.Time) {
	if a.LockedUntil.After(now) {
		return // locked already: failures during the lock-out do not extend it
	}
	a.Failures++
	if a.Failures >= MaxLoginFailures {
		a.Failures = 0
		a.LockedUntil = now.Add(LockoutDuration).UTC()
	}
}
