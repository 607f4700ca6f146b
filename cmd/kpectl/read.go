package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kpe-agent/agent/cards"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/biometric"
	"kpe-agent/biometric/sensor"
	"kpe-agent/internal/i18n"
)

// readOptions are kpectl read's flags.
type readOptions struct {
	reader, samReader       string
	asJSON                  bool
	photo                   string
	trustBKN, trustDukcapil string
	codeFile, secretsFile   string
	timeout                 time.Duration
	trace, logFile          string
	fingerLab, fingerCmd    string
	confirmLast             bool
}

// read: kpectl read [-r READER] [--sam READER] [--json] [--photo FILE] ...
//
// It finds the card and the SAM among the readers (or takes them from -r
// and --sam), activates the SAM if it is not yet and a code file is given,
// reads the card with its profile and prints each check. The photo is
// written only with --photo, never into the JSON; a KTP-el photo is never
// written.
func (c *cli) read(ctx context.Context, o readOptions) error {
	var code []byte
	var secrets [][]byte
	opts := cards.Options{Photo: o.photo != ""}
	var err error
	if o.trustBKN != "" {
		if opts.BKNRoots, err = loadPool(o.trustBKN); err != nil {
			return err
		}
	}
	if o.trustDukcapil != "" {
		if opts.DukcapilRoots, err = loadPool(o.trustDukcapil); err != nil {
			return err
		}
	}
	if o.codeFile != "" {
		if code, err = readSecret(o.codeFile); err != nil {
			return err
		}
	}
	if o.secretsFile != "" {
		b, err := readSecret(o.secretsFile)
		if err != nil {
			return err
		}
		secrets = bytes.Split(b, []byte("\n"))
		if len(secrets) != 2 {
			return fmt.Errorf("%s: want two lines (the two KTP-el secrets)", o.secretsFile)
		}
	}

	tracer, closeTrace, err := openTrace(o.trace)
	if err != nil {
		return err
	}
	defer closeTrace()
	log := slog.New(slog.DiscardHandler)
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		log = slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tr := pcsc.New(pcsc.Options{Logger: log})
	defer tr.Close()
	card, samCard, err := findCards(ctx, tr, o.reader, o.samReader)
	if err != nil {
		return err
	}
	defer card.Close()
	var s *sam.SAM
	if samCard != nil {
		defer samCard.Close()
		if s, err = openSAM(ctx, apdu.Trace(samCard, tracer), code); err != nil {
			return err
		}
	}
	traced := apdu.TraceCard(card, tracer)
	if err := card.BeginTransaction(ctx); err != nil {
		return err
	}
	defer card.EndTransaction()
	var cs cards.SAM
	if s != nil {
		cs = s
	}
	r, err := cards.Read(ctx, traced, cs, opts)
	if errors.Is(err, sam.ErrNotActivated) && secrets != nil {
		// KTP-el functions need the installation secrets once per SAM.
		log.Info("activating the SAM for KTP-el")
		if err = s.ActivateKTP(ctx, secrets[0], secrets[1]); err == nil {
			r, err = cards.Read(ctx, traced, cs, opts)
		}
	}
	if err != nil {
		log.Error("card read failed", "reader", card.Reader(), "err", err)
		if errors.Is(err, cards.ErrNoSAM) {
			return sentenceError{c.msg.NoSAM, err}
		}
		return err
	}
	defer func() {
		if r.KTPel != nil {
			r.KTPel.Wipe()
		}
	}()
	// Checks and verdict only: the result's personal data stays out of logs.
	log.Info("card read", "reader", card.Reader(), "kind", r.Kind, "verdict", r.Verdict, "checks", r.Checks, "ktpel", r.KTPel)
	if o.photo != "" {
		if r.KTPel != nil {
			return errors.New(c.msg.PhotoKTPel)
		}
		if p := r.Photo(); p != nil {
			if err := os.WriteFile(o.photo, p, 0o600); err != nil {
				return err
			}
		}
	}
	v := r.View(i18n.Lang(c.lang))
	var finger *fingerView
	if (o.fingerLab != "" || o.fingerCmd != "") && r.Checks.CardAuthentic.OK && (r.KPE != nil || r.KTPel != nil) {
		finger = c.verifyFinger(ctx, r, card.Reader(), o.fingerLab, o.fingerCmd, o.confirmLast)
	}
	if o.asJSON {
		var out any = v
		if finger != nil {
			out = struct {
				cards.View
				Fingerprint *fingerView `json:"fingerprint"`
			}{v, finger}
		}
		return c.printJSON(out)
	}
	c.printView(card.Reader(), v, o.photo)
	if finger != nil {
		fmt.Fprintf(c.out, "  %s: %s\n", c.msg.Finger, finger.Message)
	}
	return nil
}

// sentenceError is an error explained by a sentence for the operator.
type sentenceError struct {
	sentence string
	err      error
}

func (e sentenceError) Error() string { return e.sentence }
func (e sentenceError) Unwrap() error { return e.err }

// fingerView is the fingerprint outcome shown to the clerk: no template,
// no score.
type fingerView struct {
	Result    string `json:"result"` // match, no-match, place-again, last-try, blocked, error
	TriesLeft int    `json:"tries_left,omitempty"`
	Finger    int    `json:"finger,omitempty"`
	Message   string `json:"message"`
}

func (c *cli) verifyFinger(ctx context.Context, r *cards.Result, reader, labURL, command string, confirm bool) *fingerView {
	var s sensor.Sensor = sensor.External{Command: strings.Fields(command)}
	if labURL != "" {
		slot := 0
		if n := len(reader); n > 0 && reader[n-1] >= '0' && reader[n-1] <= '9' {
			slot = int(reader[n-1] - '0') // lab readers are "Virtual PCD 00 0n"
		}
		s = sensor.Lab{Control: labURL, Slot: slot}
	}
	fmt.Fprintln(c.errOut, c.msg.PlaceFinger)
	capture, err := s.Capture(ctx)
	if err != nil {
		return c.fingerError(err, 0)
	}
	defer capture.Wipe()
	if r.KTPel != nil {
		out, err := cards.MatchOffCard(r.KTPel, capture)
		if err != nil {
			return c.fingerError(err, 0)
		}
		if out.Match {
			return &fingerView{Result: "match", Finger: out.Finger, Message: c.msg.FingerMatch}
		}
		return &fingerView{Result: "no-match", Message: c.msg.FingerNoMatch}
	}
	out, err := cards.VerifyOnCard(ctx, r.Channel, r.KPE.BIT, capture, cards.FingerOptions{ConfirmLastTry: confirm})
	if err != nil {
		return c.fingerError(err, out.TriesLeft)
	}
	if out.Match {
		return &fingerView{Result: "match", Message: c.msg.FingerMatch}
	}
	return &fingerView{Result: "no-match", TriesLeft: out.TriesLeft, Message: fmt.Sprintf(c.msg.FingerNoMatchTries, out.TriesLeft)}
}

func (c *cli) fingerError(err error, tries int) *fingerView {
	switch {
	case errors.Is(err, biometric.ErrPlaceAgain), errors.Is(err, sensor.ErrNoFinger), errors.Is(err, sensor.ErrTimeout):
		return &fingerView{Result: "place-again", Message: c.msg.FingerPlaceAgain}
	case errors.Is(err, cards.ErrLastTry):
		return &fingerView{Result: "last-try", TriesLeft: tries, Message: c.msg.FingerLastTry}
	case errors.Is(err, cards.ErrFingerBlocked):
		return &fingerView{Result: "blocked", Message: c.msg.FingerBlocked}
	}
	return &fingerView{Result: "error", Message: c.msg.FingerError + " (" + err.Error() + ")"}
}

func (c *cli) printView(reader string, v cards.View, photo string) {
	fmt.Fprintf(c.out, "%s  ATR %s\n", reader, v.ATR)
	verdict := v.Verdict
	if k, _, ok := strings.Cut(verdict, ":"); ok {
		verdict = k
	}
	fmt.Fprintf(c.out, "%s: %s\n", v.Kind, c.msg.Verdicts[verdict])
	if v.SAM != nil {
		fmt.Fprintf(c.out, "  SAM %s  %s  tries %d  counter %d\n", v.SAM.Serial, v.SAM.State, v.SAM.TriesLeft, v.SAM.Counter)
	}
	if v.Kind == cards.KindUnknown || v.SAM != nil {
		return
	}
	line := func(name string, ok bool, reason string) {
		state := c.msg.OK
		if !ok {
			state = c.msg.Failed + " — " + reason
		}
		fmt.Fprintf(c.out, "  %-36s %s\n", name, state)
	}
	line(c.msg.CheckCard, v.Checks.CardAuthentic.OK, v.Checks.CardAuthentic.Reason)
	line(c.msg.CheckData, v.Checks.DataAuthentic.OK, v.Checks.DataAuthentic.Reason)
	line(c.msg.CheckIDs, v.Checks.IdentifiersConsistent.OK, v.Checks.IdentifiersConsistent.Reason)
	for _, w := range v.Warnings {
		fmt.Fprintf(c.out, "  ! %s\n", w.Message)
	}
	if v.Identity != nil {
		fmt.Fprintf(c.out, "  %s: %s  NIP %s\n", c.msg.Holder, v.Identity.Name, firstNonEmpty(v.Identity.NIP, v.Identity.LinkedNIP))
	}
	if v.Photo != nil && photo != "" && v.KTPel == nil {
		fmt.Fprintf(c.out, "  %s %s (%d bytes)\n", c.msg.PhotoSaved, photo, v.Photo.Bytes)
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// findCards connects to the card and the SAM: the named readers, or else
// every reader with a card, telling the SAM apart by selecting its
// application.
func findCards(ctx context.Context, tr *pcsc.Transport, cardReader, samReader string) (apdu.Card, apdu.Card, error) {
	rs, err := tr.Readers(ctx)
	if err != nil {
		return nil, nil, err
	}
	var card, samCard apdu.Card
	closeAll := func() {
		for _, x := range []apdu.Card{card, samCard} {
			if x != nil {
				x.Close()
			}
		}
	}
	for _, r := range rs {
		if !r.CardPresent || r.Mute {
			continue
		}
		if (cardReader != "" && r.Name == cardReader && card == nil) || (samReader != "" && r.Name == samReader && samCard == nil) {
			x, err := tr.Connect(ctx, r.Name)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			if r.Name == cardReader {
				card = x
			} else {
				samCard = x
			}
			continue
		}
		if (card != nil || cardReader != "") && (samCard != nil || samReader != "") {
			continue
		}
		x, err := tr.Connect(ctx, r.Name)
		if err != nil {
			continue // busy or mute: not ours to use
		}
		kind, err := recognize(ctx, x)
		switch {
		case err == nil && kind == cards.KindSAM && samCard == nil && samReader == "":
			samCard = x
		case err == nil && kind != cards.KindSAM && card == nil && cardReader == "":
			card = x
		default:
			x.Close()
		}
	}
	if card == nil {
		closeAll()
		if cardReader != "" {
			return nil, nil, fmt.Errorf("kpectl read: %s: %w", cardReader, apdu.ErrNoCard)
		}
		return nil, nil, fmt.Errorf("kpectl read: %w", apdu.ErrNoCard)
	}
	return card, samCard, nil
}

func recognize(ctx context.Context, card apdu.Card) (cards.Kind, error) {
	if err := card.BeginTransaction(ctx); err != nil {
		return "", err
	}
	defer card.EndTransaction()
	return cards.Recognize(ctx, card, cards.DefaultProfiles)
}

// openSAM selects the SAM and activates it when it is inactive and a code
// is known (an active SAM is never sent a code: a wrong one costs a try).
func openSAM(ctx context.Context, card apdu.Transmitter, code []byte) (*sam.SAM, error) {
	s, err := sam.Open(ctx, card)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case info.State == sam.Blocked:
		return nil, sam.ErrBlocked
	case info.State == sam.Inactive && code != nil:
		if err := s.Activate(ctx, code); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return p, nil
}

// readSecret reads a secret file; it refuses files others can read.
func readSecret(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %v are too open; use chmod 600", filepath.Clean(path), st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
			lines = append(lines, bytes.Clone(l))
		}
	}
	return bytes.Join(lines, []byte("\n")), sc.Err()
}
