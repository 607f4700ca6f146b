package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultTimeout bounds every call of a Client but Auth, Sync and the
// event stream, which wait for people and the network and are bounded by
// their context only.
const DefaultTimeout = 10 * time.Second

// clientMaxBody bounds the JSON answers the client reads (a card view with its
// photo stays far below).
const clientMaxBody = 8 << 20

// ErrNotRunning: nothing answers at the agent's address (connection
// refused, or the dial failed). The *NotRunningError that wraps it keeps
// the address and the cause.
var ErrNotRunning = errors.New("the agent is not running")

// NotRunningError is a failed connection to the agent.
type NotRunningError struct {
	URL string
	Err error // the dial error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("%v (nothing answers at %s: %v)", ErrNotRunning, e.URL, e.Err)
}

func (e *NotRunningError) Unwrap() []error { return []error{ErrNotRunning, e.Err} }

// APIError is an error answer of the agent: the HTTP status and the
// symbolic error of its body.
type APIError struct {
	Status int
	Err    Error
}

func (e *APIError) Error() string {
	if e.Err.Message != "" {
		return fmt.Sprintf("agent: %d %s: %s", e.Status, e.Err.Code, e.Err.Message)
	}
	return fmt.Sprintf("agent: %d %s", e.Status, e.Err.Code)
}

// Client is the Go client of the agent's local API.
type Client struct {
	base    *url.URL
	token   string
	hc      *http.Client // without a client timeout: every call has a context
	timeout time.Duration
	pin     []byte // PinnedCert's certificate (DER), nil: the system's roots
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (its Timeout should be 0: calls
// are bounded by their context and WithTimeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout sets the bound of ordinary calls (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// PinnedCert trusts exactly the certificate in certPEM (the agent's
// api.tls_cert_file) for an https:// agent: its first PEM CERTIFICATE
// block must be the certificate the agent presents, whatever its names
// and issuer (the agent's own pair, often self-signed, reached at
// 127.0.0.1 or at the address it listens on).
func PinnedCert(certPEM []byte) (Option, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("api: pinned certificate: no PEM CERTIFICATE block")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("api: pinned certificate: %w", err)
		}
		der := bytes.Clone(b.Bytes)
		return func(c *Client) { c.pin = der }, nil
	}
}

// pinned is the TLS configuration that accepts only the certificate der.
func pinned(der []byte) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// the chain and names are not what is checked: the certificate
		// itself is, byte for byte, in VerifyConnection
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, der) {
				return errors.New("api: the agent's certificate is not the pinned one (api.tls_cert_file)")
			}
			return nil
		},
	}
}

// NewClient returns a client of the agent at baseURL ("http://127.0.0.1:7531";
// a bare "host:port" is taken as http). token may be empty: only the
// health status answers then.
func NewClient(baseURL, token string, opts ...Option) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a password:
		// name the reason only
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("api: agent URL: %w", err)
	}
	if u.User != nil {
		// The agent takes a bearer token, never user:password@; such a URL
		// is a mistake that would put a secret in error messages and logs.
		return nil, errors.New("api: agent URL: user:password@ is not taken (the local API token comes from its file)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: agent URL %q: want http://host:port", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: token, timeout: DefaultTimeout}
	c.hc = &http.Client{Transport: &http.Transport{
		// Loopback: no proxy, ever (HTTPS_PROXY is for the back office).
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		ResponseHeaderTimeout: 0, // Auth waits for people; contexts bound the calls
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}}
	for _, o := range opts {
		o(c)
	}
	if c.pin != nil {
		if tr, ok := c.hc.Transport.(*http.Transport); ok {
			tr = tr.Clone()
			tr.TLSClientConfig = pinned(c.pin)
			c.hc = &http.Client{Transport: tr, CheckRedirect: c.hc.CheckRedirect, Jar: c.hc.Jar}
		}
	}
	return c, nil
}

// URL is the agent's base URL.
func (c *Client) URL() string { return c.base.String() }

// HasToken reports whether the client sends a bearer token.
func (c *Client) HasToken() bool { return c.token != "" }

func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := *c.base
	u.Path += path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a JSON answer into out (nil: none
// expected). bounded applies the client's timeout.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any, bounded bool) error {
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return apiErrorOf(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, clientMaxBody))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, clientMaxBody+1))
	if err != nil {
		return c.transportError(err)
	}
	if len(b) > clientMaxBody {
		return fmt.Errorf("api: %s %s: answer larger than %d bytes", method, path, clientMaxBody)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("api: %s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

// transportError turns a failed dial into a *NotRunningError.
func (c *Client) transportError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &NotRunningError{URL: c.base.String(), Err: op}
	}
	return fmt.Errorf("api: %w", err)
}

// errorOf reads an error answer.
func apiErrorOf(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err == nil && eb.Error.Code != "" {
		return &APIError{Status: resp.StatusCode, Err: eb.Error}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return &APIError{Status: resp.StatusCode, Err: Error{Code: fmt.Sprintf("http-%d", resp.StatusCode), Message: msg}}
}

// Health is the agent's state; without a token only Status is filled.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, PathHealth, nil, nil, &h, true)
	return h, err
}

// Readers lists the readers as the agent sees them.
func (c *Client) Readers(ctx context.Context) ([]Reader, error) {
	var rs []Reader
	err := c.do(ctx, http.MethodGet, PathReaders, nil, nil, &rs, true)
	return rs, err
}

func clientReaderQuery(reader string) url.Values {
	if reader == "" {
		return nil
	}
	return url.Values{"reader": {reader}}
}

// Card is the view of the card in reader ("" for the agent's default), as
// the agent sends it (agent/cards.View).
func (c *Client) Card(ctx context.Context, reader string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.do(ctx, http.MethodGet, PathCard, clientReaderQuery(reader), nil, &raw, true)
	return raw, err
}

// Prefill is the ASKES / BPJS form filled from the card in reader.
func (c *Client) Prefill(ctx context.Context, reader string) (Prefill, error) {
	var p Prefill
	err := c.do(ctx, http.MethodGet, PathPrefill, clientReaderQuery(reader), nil, &p, true)
	return p, err
}

// Auth runs an authentication. It waits for the card and the finger:
// only ctx bounds it.
func (c *Client) Auth(ctx context.Context, req AuthRequest) (AuthResult, error) {
	var r AuthResult
	err := c.do(ctx, http.MethodPost, PathAuth, nil, req, &r, false)
	return r, err
}

// ErrNoReader is Cancel's error for an empty reader name: the agent
// cancels every workflow only when asked to (CancelAll).
var ErrNoReader = errors.New("api: cancel: no reader named (CancelAll cancels every workflow)")

// Cancel cancels the workflow on reader, which must be named (ErrNoReader
// otherwise). An *APIError with Status 404 says nothing was running.
func (c *Client) Cancel(ctx context.Context, reader string) error {
	if reader == "" {
		return ErrNoReader
	}
	return c.do(ctx, http.MethodPost, PathCancel, nil, CancelRequest{Reader: reader}, nil, true)
}

// CancelAll cancels the workflows on every reader ({"all": true}). An
// *APIError with Status 404 says nothing was running.
func (c *Client) CancelAll(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathCancel, nil, CancelRequest{All: true}, nil, true)
}

// AnswerPrompt answers the prompt a workflow waits on (an Event or
// Reader of state StatePrompt): answer is AnswerContinue or
// AnswerCancel. An *APIError with Status 404 says no such prompt waits
// (already answered, timed out, or the workflow ended).
func (c *Client) AnswerPrompt(ctx context.Context, reader, id, answer string) error {
	return c.do(ctx, http.MethodPost, PathPrompt, nil, PromptRequest{Reader: reader, ID: id, Answer: answer}, nil, true)
}

// Queue is the outbox's and the uploader's state.
func (c *Client) Queue(ctx context.Context) (QueueStatus, error) {
	var q QueueStatus
	err := c.do(ctx, http.MethodGet, PathQueue, nil, nil, &q, true)
	return q, err
}

// Sync sends the outbox now; only ctx bounds it (the back office may be
// slow). A SyncResult with Error set comes with a nil error when the agent
// answered 200.
func (c *Client) Sync(ctx context.Context) (SyncResult, error) {
	var r SyncResult
	err := c.do(ctx, http.MethodPost, PathSync, nil, nil, &r, false)
	return r, err
}

// LoketLogin asks for a one-time login link to the counter screen (the
// token only). An *APIError with Status 404 says the counter screen is
// off (loket.enabled).
func (c *Client) LoketLogin(ctx context.Context) (LoketLogin, error) {
	var l LoketLogin
	err := c.do(ctx, http.MethodPost, PathLoketLogin, nil, nil, &l, true)
	return l, err
}

// CodesToday lists this terminal's codes of today, newest first.
func (c *Client) CodesToday(ctx context.Context) (TodayCodes, error) {
	var t TodayCodes
	err := c.do(ctx, http.MethodGet, PathCodesToday, nil, nil, &t, true)
	return t, err
}

// OpenEvents connects to the event stream; it returns once the agent has
// answered, so that no event after that moment is missed. Close the
// stream when done; cancelling ctx ends it too.
func (c *Client) OpenEvents(ctx context.Context) (*EventStream, error) {
	return c.OpenEventsAfter(ctx, 0)
}

// OpenEventsAfter is OpenEvents for a client that reconnects: the agent
// first sends the events after seq that it still holds (Last-Event-ID).
func (c *Client) OpenEventsAfter(ctx context.Context, seq uint64) (*EventStream, error) {
	req, err := c.request(ctx, http.MethodGet, PathEvents, nil, nil)
	if err != nil {
		return nil, err
	}
	if seq > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(seq, 10))
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	// The answer's headers come at once; bound the wait for them only.
	type result struct {
		resp *http.Response
		err  error
	}
	ctx2, cancel := context.WithCancel(ctx)
	req = req.WithContext(ctx2)
	done := make(chan result, 1)
	go func() {
		resp, err := c.hc.Do(req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(c.timeout):
		cancel()
		r = <-done
		if r.err == nil {
			r.resp.Body.Close()
		}
		return nil, fmt.Errorf("api: %s: no answer within %v", PathEvents, c.timeout)
	}
	if r.err != nil {
		cancel()
		return nil, c.transportError(r.err)
	}
	if r.resp.StatusCode >= 400 {
		defer cancel()
		defer r.resp.Body.Close()
		return nil, apiErrorOf(r.resp)
	}
	if ct := r.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		r.resp.Body.Close()
		return nil, &StreamError{Reason: fmt.Sprintf("content type %q, want text/event-stream", ct)}
	}
	return &EventStream{r: NewSSEReader(r.resp.Body), body: r.resp.Body, cancel: cancel}, nil
}

// Events streams the agent's events until ctx ends or the stream fails;
// the error channel then receives one error (nil when ctx ended) and both
// channels close.
func (c *Client) Events(ctx context.Context) (<-chan Event, <-chan error) {
	events := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(events)
		s, err := c.OpenEvents(ctx)
		if err != nil {
			errc <- err
			return
		}
		defer s.Close()
		for {
			ev, err := s.Next()
			if err != nil {
				if ctx.Err() != nil {
					err = nil
				}
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				errc <- nil
				return
			}
		}
	}()
	return events, errc
}

// EventStream is a connected event stream.
type EventStream struct {
	r      *SSEReader
	body   io.Closer
	cancel context.CancelFunc
}

// Next blocks until the next event. io.EOF: the agent closed the stream
// (it stopped); a *StreamError: the stream is garbage.
func (s *EventStream) Next() (Event, error) { return s.r.Next() }

// Close ends the stream.
func (s *EventStream) Close() error {
	s.cancel()
	return s.body.Close()
}

// Limits of the event stream parser.
const (
	sseMaxLine  = 64 << 10 // one line
	sseMaxEvent = 1 << 20  // one event's data
)

// ErrBadStream: the event stream is not a valid stream of Events. Every
// parse failure is a *StreamError wrapping it.
var ErrBadStream = errors.New("api: malformed event stream")

// StreamError says where and why the event stream is malformed.
type StreamError struct {
	Line   int // 1-based line of the stream (0: not about a line)
	Reason string
	Err    error // the cause, e.g. a JSON error
}

func (e *StreamError) Error() string {
	s := ErrBadStream.Error()
	if e.Line > 0 {
		s += fmt.Sprintf(": line %d", e.Line)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StreamError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrBadStream, e.Err}
	}
	return []error{ErrBadStream}
}

// SSEReader parses a text/event-stream of Events (the Server-Sent Events
// format): "id:", "event:" and "data:" fields, data spread over several
// lines joined with newlines, comment lines (": keep-alive") and "retry:"
// ignored, lines ended by LF, CRLF or CR. A block of fields ended by a
// blank line is one event; a block without data is dropped, as the format
// says.
//
// Stricter than a browser: an unknown field, an id that is not a number, a
// data block that is not one JSON Event, an event: type that contradicts
// the JSON's, a line that is not UTF-8, or an over-long line is a
// *StreamError, and the reader stays
// failed.
type SSEReader struct {
	r    io.Reader
	buf  []byte // unread bytes
	eof  bool
	line int
	err  error
	// skipLF: the last line ended with CR; a LF starting the next read
	// belongs to it.
	skipLF bool
}

// NewSSEReader parses the stream r.
func NewSSEReader(r io.Reader) *SSEReader { return &SSEReader{r: r} }

// readLine returns the next line without its end.
func (p *SSEReader) readLine() (string, error) {
	for {
		if p.skipLF && len(p.buf) > 0 {
			if p.buf[0] == '\n' {
				p.buf = p.buf[1:]
			}
			p.skipLF = false
		}
		if i := bytes.IndexAny(p.buf, "\r\n"); i >= 0 && !(p.buf[i] == '\r' && i == len(p.buf)-1 && !p.eof) {
			line := string(p.buf[:i])
			if p.buf[i] == '\r' {
				if i+1 < len(p.buf) && p.buf[i+1] == '\n' {
					i++
				} else if i+1 == len(p.buf) {
					p.skipLF = true
				}
			}
			p.buf = p.buf[i+1:]
			p.line++
			return line, nil
		}
		if len(p.buf) > sseMaxLine {
			return "", &StreamError{Line: p.line + 1, Reason: fmt.Sprintf("line longer than %d bytes", sseMaxLine)}
		}
		if p.eof {
			if len(p.buf) > 0 {
				// An unterminated last line: the stream was cut; what it
				// began is not dispatched.
				p.buf = nil
			}
			return "", io.EOF
		}
		var chunk [4096]byte
		n, err := p.r.Read(chunk[:])
		p.buf = append(p.buf, chunk[:n]...)
		if errors.Is(err, io.EOF) {
			p.eof = true
		} else if err != nil {
			return "", err
		}
	}
}

// Next returns the next event; io.EOF at the end of the stream.
func (p *SSEReader) Next() (Event, error) {
	if p.err != nil {
		return Event{}, p.err
	}
	ev, err := p.next()
	if err != nil {
		p.err = err
	}
	return ev, err
}

func (p *SSEReader) next() (Event, error) {
	var (
		data           []byte
		hasData        bool
		id, typ        string
		hasID, hasType bool
		start          int
	)
	for {
		line, err := p.readLine()
		if err != nil {
			return Event{}, err
		}
		if line == "" {
			if !hasData {
				data, id, typ, hasID, hasType = nil, "", "", false, false
				continue
			}
			return p.dispatch(start, data, id, typ, hasID, hasType)
		}
		if line[0] == ':' {
			continue // comment: keep-alive
		}
		if !utf8.ValidString(line) {
			// a browser would decode it to U+FFFD; the agent writes UTF-8
			return Event{}, &StreamError{Line: p.line, Reason: "line is not UTF-8"}
		}
		if start == 0 {
			start = p.line
		}
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch name {
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
			if len(data) > sseMaxEvent {
				return Event{}, &StreamError{Line: p.line, Reason: fmt.Sprintf("event data longer than %d bytes", sseMaxEvent)}
			}
		case "id":
			id, hasID = value, true
		case "event":
			typ, hasType = value, true
		case "retry":
		default:
			return Event{}, &StreamError{Line: p.line, Reason: fmt.Sprintf("unknown field %q", sseTruncate(name, 40))}
		}
	}
}

func (p *SSEReader) dispatch(line int, data []byte, id, typ string, hasID, hasType bool) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&ev); err != nil {
		return Event{}, &StreamError{Line: line, Reason: "data is not a JSON event", Err: err}
	}
	// Token, not More: More says false before a stray '}' or ']'
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Event{}, &StreamError{Line: line, Reason: "data holds more than one JSON value"}
	}
	if hasID && id != "" {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil || strconv.FormatUint(seq, 10) != id {
			return Event{}, &StreamError{Line: line, Reason: fmt.Sprintf("id %q is not a sequence number", sseTruncate(id, 40))}
		}
		switch {
		case ev.Seq == 0:
			ev.Seq = seq
		case ev.Seq != seq:
			return Event{}, &StreamError{Line: line, Reason: fmt.Sprintf("id %d but seq %d", seq, ev.Seq)}
		}
	}
	if hasType {
		switch {
		case ev.Type == "":
			ev.Type = typ
		case ev.Type != typ:
			return Event{}, &StreamError{Line: line, Reason: fmt.Sprintf("event %q but type %q", sseTruncate(typ, 40), sseTruncate(ev.Type, 40))}
		}
	}
	return ev, nil
}

func sseTruncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
