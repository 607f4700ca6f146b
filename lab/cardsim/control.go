package cardsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// HTTP control API (JSON):
//
//	GET    /v1/slots                 → {"slots": [SlotStatus...]}
//	POST   /v1/slots/{n}/insert      {"card": "path/to/card.json"} → SlotStatus
//	POST   /v1/slots/{n}/remove      → SlotStatus
//	POST   /v1/slots/{n}/swap        {"card": "path/to/card.json"} → SlotStatus
//	PUT    /v1/slots/{n}/fault       Fault → SlotStatus
//	DELETE /v1/slots/{n}/fault       → SlotStatus
//
// Errors are {"error": "..."} with 400 (bad request or card image), 404
// (unknown slot or path), 405 (method), 409 (slot occupied or empty) or 503
// (lab closed). Relative card paths are resolved against LabConfig.CardDir.

const maxControlBody = 1 << 20

// CardRequest is the body of insert and swap.
type CardRequest struct {
	Card string `json:"card"`
}

// SlotList is the body of GET /v1/slots.
type SlotList struct {
	Slots []SlotStatus `json:"slots"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Handler returns the HTTP control API of the lab.
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/slots", func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, SlotList{Slots: l.Status()})
	})
	mux.HandleFunc("/v1/slots/{n}/insert", l.slotHandler(http.MethodPost, func(r *http.Request, n int) error {
		c, err := l.loadRequestedCard(r)
		if err != nil {
			return err
		}
		return l.Insert(n, c)
	}))
	mux.HandleFunc("/v1/slots/{n}/swap", l.slotHandler(http.MethodPost, func(r *http.Request, n int) error {
		if _, err := l.slot(n); err != nil {
			return err
		}
		c, err := l.loadRequestedCard(r)
		if err != nil {
			return err
		}
		return l.Swap(n, c)
	}))
	mux.HandleFunc("/v1/slots/{n}/remove", l.slotHandler(http.MethodPost, func(_ *http.Request, n int) error {
		return l.Remove(n)
	}))
	setFault := l.slotHandler(http.MethodPut, func(r *http.Request, n int) error {
		var f Fault
		if err := readJSON(r, &f); err != nil {
			return err
		}
		return l.SetFault(n, f)
	})
	clearFault := l.slotHandler(http.MethodDelete, func(_ *http.Request, n int) error {
		return l.ClearFault(n)
	})
	mux.HandleFunc("/v1/slots/{n}/fault", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			setFault(w, r)
		case http.MethodDelete:
			clearFault(w, r)
		default:
			w.Header().Set("Allow", "PUT, DELETE")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
		}
	})
	l.sensorHandlers(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s", r.URL.Path))
	})
	return mux
}

// badRequest marks client errors (bad JSON, unloadable card image).
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

func (l *Lab) loadRequestedCard(r *http.Request) (Card, error) {
	var req CardRequest
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Card == "" {
		return nil, badRequest{errors.New(`missing "card" (path to a card image)`)}
	}
	p := req.Card
	if l.cfg.CardDir != "" && !filepath.IsAbs(p) {
		p = filepath.Join(l.cfg.CardDir, p)
	}
	c, err := LoadCard(p)
	if err != nil {
		return nil, badRequest{err}
	}
	return c, nil
}

func (l *Lab) slotHandler(method string, op func(r *http.Request, n int) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, method) {
			return
		}
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil {
			writeError(w, http.StatusNotFound, fmt.Errorf("slot %q: %w", r.PathValue("n"), ErrBadSlot))
			return
		}
		if err := op(r, n); err != nil {
			writeError(w, statusFor(err), err)
			return
		}
		st, err := l.SlotStatus(n)
		if err != nil {
			writeError(w, statusFor(err), err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func statusFor(err error) int {
	var br badRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest
	case errors.Is(err, ErrBadSlot):
		return http.StatusNotFound
	case errors.Is(err, ErrSlotOccupied), errors.Is(err, ErrSlotEmpty):
		return http.StatusConflict
	case errors.Is(err, ErrLabClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed", r.Method))
	return false
}

func readJSON(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return badRequest{fmt.Errorf("reading body: %w", err)}
	}
	if len(data) > maxControlBody {
		return badRequest{errors.New("request body too large")}
	}
	if err := decodeStrict(data, v); err != nil {
		return badRequest{fmt.Errorf("bad JSON body: %w", err)}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

// ControlClient talks to a lab's HTTP control API (kpe-cardsim serve --control).
type ControlClient struct {
	// BaseURL such as "http://127.0.0.1:35990".
	BaseURL string
	// HTTPClient; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// NewControlClient returns a client for addr, either a base URL or a bare
// "host:port".
func NewControlClient(addr string) *ControlClient {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &ControlClient{BaseURL: strings.TrimRight(addr, "/")}
}

// ControlError is an error answer of the control API.
type ControlError struct {
	StatusCode int
	Message    string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("cardsim control: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Slots lists every slot.
func (c *ControlClient) Slots(ctx context.Context) ([]SlotStatus, error) {
	var out SlotList
	if err := c.do(ctx, http.MethodGet, "/v1/slots", nil, &out); err != nil {
		return nil, err
	}
	return out.Slots, nil
}

// Insert inserts the card image at cardPath (as seen by the lab process).
func (c *ControlClient) Insert(ctx context.Context, slot int, cardPath string) (SlotStatus, error) {
	return c.slotOp(ctx, http.MethodPost, slot, "insert", CardRequest{Card: cardPath})
}

// Remove removes the card of a slot.
func (c *ControlClient) Remove(ctx context.Context, slot int) (SlotStatus, error) {
	return c.slotOp(ctx, http.MethodPost, slot, "remove", nil)
}

// Swap replaces the card of a slot (remove, pause, insert).
func (c *ControlClient) Swap(ctx context.Context, slot int, cardPath string) (SlotStatus, error) {
	return c.slotOp(ctx, http.MethodPost, slot, "swap", CardRequest{Card: cardPath})
}

// SetFault arms a fault on a slot.
func (c *ControlClient) SetFault(ctx context.Context, slot int, f Fault) (SlotStatus, error) {
	return c.slotOp(ctx, http.MethodPut, slot, "fault", f)
}

// ClearFault disarms the fault of a slot.
func (c *ControlClient) ClearFault(ctx context.Context, slot int) (SlotStatus, error) {
	return c.slotOp(ctx, http.MethodDelete, slot, "fault", nil)
}

func (c *ControlClient) slotOp(ctx context.Context, method string, slot int, op string, body any) (SlotStatus, error) {
	var st SlotStatus
	err := c.do(ctx, method, fmt.Sprintf("/v1/slots/%d/%s", slot, op), body, &st)
	return st, err
}

func (c *ControlClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u, err := url.JoinPath(c.BaseURL, path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cardsim control: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxControlBody))
	if err != nil {
		return fmt.Errorf("cardsim control: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &ControlError{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cardsim control: bad response: %w", err)
	}
	return nil
}
