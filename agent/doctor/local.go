package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"kpe-agent/agent/api"
	"kpe-agent/apdu"
	"kpe-agent/apdu/pcsc"
	"kpe-agent/apdu/sam"
	"kpe-agent/internal/i18n"
)

// agentState is what the agent check learnt: the later checks ask the
// running agent instead of touching what it holds (the SAM, the outbox).
type agentState struct {
	running  bool
	health   *api.Health      // with details: the token was accepted
	queue    *api.QueueStatus // nil when not available
	queueErr error
}

func (r *run) startAgent() Text {
	if r.goos == "windows" {
		return i18n.Both("doctor.agent.start.windows")
	}
	return i18n.Both("doctor.agent.start.systemd")
}

func (r *run) checkAgent(ctx context.Context) *agentState {
	st := &agentState{}
	f := Finding{ID: CheckAgent}
	defer func() { r.add(f) }()
	if r.o.Agent == nil {
		f.Status, f.Code, f.Detail = Skip, "no-address", "api.listen is not a valid address: "+r.cfg.API.Listen
		f.Message = i18n.Both("doctor.agent.no-address.message")
		f.Action = i18n.Both("doctor.agent.no-address.action")
		return st
	}
	c := r.o.Agent
	h, err := bounded(ctx, r.o.CheckTimeout, c.Health)
	if errors.Is(err, api.ErrNotRunning) {
		f.Status, f.Code, f.Detail = Warn, "not-running", err.Error()
		f.Message = i18n.Both("doctor.agent.not-running.message", c.URL())
		f.Action = r.startAgent()
		return st
	}
	if err != nil {
		f.Status, f.Code, f.Detail = Warn, "error", fmt.Sprintf("%s%s: %v", c.URL(), api.PathHealth, err)
		f.Message = i18n.Both("doctor.agent.error.message")
		f.Action = i18n.Both("doctor.agent.error.action")
		return st
	}
	st.running = true
	detail := fmt.Sprintf("%s: status %s", c.URL(), h.Status)
	if h.Version != "" {
		detail += ", version " + h.Version
	}
	if !h.Started.IsZero() {
		detail += ", started " + h.Started.Format("2006-01-02 15:04:05 -0700")
	}
	if h.Terminal != "" {
		detail += ", terminal " + h.Terminal
	}
	f.Detail = detail
	if !c.HasToken() {
		f.Status, f.Code = Warn, "no-token"
		if r.o.TokenErr != nil {
			f.Detail += "; no API token: " + r.o.TokenErr.Error()
		}
		f.Message = i18n.Both("doctor.agent.no-token.message")
		f.Action = i18n.Both("doctor.agent.no-token.action", r.cfg.API.TokenFile)
		return st
	}
	q, err := bounded(ctx, r.o.CheckTimeout, c.Queue)
	var ae *api.APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
		f.Status, f.Code = Warn, "token-rejected"
		f.Detail += fmt.Sprintf("; the agent refused the token (HTTP %d)", ae.Status)
		f.Message = i18n.Both("doctor.agent.token-rejected.message")
		f.Action = i18n.Both("doctor.agent.token-rejected.action", r.cfg.API.TokenFile)
		return st
	}
	st.health = &h
	if err == nil {
		st.queue = &q
	}
	st.queueErr = err
	if h.Status != "ok" {
		var codes []string
		for _, p := range h.Problems {
			codes = append(codes, p.Code)
		}
		f.Status, f.Code = Warn, "degraded"
		f.Detail += "; problems: " + strings.Join(codes, ", ")
		f.Message = i18n.Both("doctor.agent.degraded.message", strings.Join(codes, ", "))
		f.Action = i18n.Both("doctor.agent.degraded.action")
		return st
	}
	f.Status, f.Code = OK, "running"
	f.Message = i18n.Both("doctor.agent.running.message")
	return st
}

// pcscChain: the service, then the readers, then the SAM.
func (r *run) pcscChain(ctx context.Context, ag *agentState) {
	readers, ok := r.checkPCSC(ctx)
	if !ok {
		r.add(Finding{ID: CheckReaders, Status: Skip, Code: "no-service", Detail: "the PC/SC service is not usable",
			Message: i18n.Both("doctor.needs-pcsc.message")})
		r.checkSAM(ctx, ag, nil, false)
		return
	}
	r.add(r.checkReaders(readers))
	r.checkSAM(ctx, ag, readers, true)
}

func (r *run) startPCSC() Text {
	switch r.goos {
	case "windows":
		return i18n.Both("doctor.pcsc.start.windows")
	case "darwin":
		return i18n.Both("doctor.pcsc.start.macos")
	}
	return i18n.Both("doctor.pcsc.start.pcscd")
}

func (r *run) checkPCSC(ctx context.Context) ([]apdu.ReaderInfo, bool) {
	f := Finding{ID: CheckPCSC}
	defer func() { r.add(f) }()
	rs, err := bounded(ctx, r.o.CheckTimeout, func(ctx context.Context) ([]apdu.ReaderInfo, error) {
		tr := pcsc.New(pcsc.Options{})
		defer tr.Close()
		return tr.Readers(ctx)
	})
	service := "pcscd"
	if r.goos == "windows" {
		service = "Smart Card (SCardSvr)"
	}
	switch {
	case errors.Is(err, apdu.ErrNoService):
		f.Status, f.Code, f.Detail = Fail, "no-service", err.Error()
		f.Message = i18n.Both("doctor.pcsc.no-service.message", service)
		f.Action = r.startPCSC()
		return nil, false
	case err != nil:
		f.Status, f.Code, f.Detail = Fail, "error", err.Error()
		f.Message = i18n.Both("doctor.pcsc.error.message", service)
		f.Action = r.startPCSC()
		return nil, false
	}
	f.Status, f.Code, f.Detail = OK, "running", fmt.Sprintf("PC/SC context established, %d reader(s)", len(rs))
	f.Message = i18n.Both("doctor.pcsc.running.message", service)
	return rs, true
}

func (r *run) checkReaders(rs []apdu.ReaderInfo) Finding {
	f := Finding{ID: CheckReaders}
	if len(rs) == 0 {
		f.Status, f.Code, f.Detail = Fail, "none", "PC/SC lists no readers"
		f.Message = i18n.Both("doctor.readers.none.message")
		if r.goos == "windows" {
			f.Action = i18n.Both("doctor.readers.none.action.windows")
		} else {
			f.Action = i18n.Both("doctor.readers.none.action.unix")
		}
		return f
	}
	var names, exclusive, mute []string
	for _, x := range rs {
		names = append(names, fmt.Sprintf("%q", x.Name))
		if x.Exclusive {
			exclusive = append(exclusive, x.Name)
		}
		if x.Mute {
			mute = append(mute, x.Name)
		}
	}
	f.Detail = fmt.Sprintf("%d reader(s): %s", len(rs), strings.Join(names, ", "))
	switch {
	case len(exclusive) > 0:
		f.Status, f.Code = Warn, "exclusive"
		list := strings.Join(exclusive, ", ")
		f.Detail += "; held exclusively by another program: " + list
		f.Message = i18n.Both("doctor.readers.exclusive.message", list)
		f.Action = i18n.Both("doctor.readers.exclusive.action")
	case len(mute) > 0:
		f.Status, f.Code = Warn, "mute-card"
		list := strings.Join(mute, ", ")
		f.Detail += "; a card does not answer reset in: " + list
		f.Message = i18n.Both("doctor.readers.mute-card.message", list)
		f.Action = i18n.Both("doctor.readers.mute-card.action")
	default:
		f.Status, f.Code = OK, "present"
		f.Message = i18n.Both("doctor.readers.present.message", len(rs))
	}
	return f
}

// samInfo is the SAM's state from the agent or from a probe.
type samInfo struct {
	reader, serial, state string
	tries                 int
	counter               uint32
}

func (r *run) checkSAM(ctx context.Context, ag *agentState, readers []apdu.ReaderInfo, pcscOK bool) {
	f := Finding{ID: CheckSAM}
	defer func() { r.add(f) }()
	var (
		info     *samInfo
		skipped  []string // readers the probe could not use
		probeErr error
	)
	switch {
	case ag.running && ag.health != nil:
		s := ag.health.SAM
		f.Detail = "as reported by the agent"
		if s != nil && s.Present {
			info = &samInfo{reader: s.Reader, serial: s.Serial, state: s.State, tries: s.TriesLeft, counter: s.Counter}
		}
	case ag.running:
		f.Status, f.Code, f.Detail = Skip, "agent-holds-sam", "the running agent holds the SAM and its token is not available"
		f.Message = i18n.Both("doctor.sam.agent-holds-sam.message")
		f.Action = i18n.Both("doctor.sam.agent-holds-sam.action")
		return
	case !pcscOK:
		f.Status, f.Code, f.Detail = Skip, "no-service", "the PC/SC service is not usable"
		f.Message = i18n.Both("doctor.needs-pcsc.message")
		return
	default:
		info, skipped, probeErr = r.probeSAM(ctx, readers)
		f.Detail = "probed directly (the agent is not running)"
		if len(skipped) > 0 {
			f.Detail += "; not probed (held by another program): " + strings.Join(skipped, ", ")
		}
		if probeErr != nil {
			f.Detail += "; " + probeErr.Error()
		}
	}
	if info == nil && (len(skipped) > 0 || probeErr != nil) {
		// the SAM may be in a reader that could not be probed
		f.Status, f.Code = Fail, "not-probed"
		f.Message = i18n.Both("doctor.sam.not-probed.message")
		f.Action = i18n.Both("doctor.sam.not-probed.action")
		return
	}
	if info == nil {
		f.Status, f.Code = Fail, "missing"
		f.Message = i18n.Both("doctor.sam.missing.message")
		if len(r.cfg.Readers.SAM) > 0 {
			f.Detail += "; readers.sam: " + strings.Join(r.cfg.Readers.SAM, ", ")
		}
		f.Action = i18n.Both("doctor.sam.missing.action")
		return
	}
	f.Detail = fmt.Sprintf("SAM %s in %q: state %s, activation tries left %d, signature counter %d; %s",
		info.serial, info.reader, info.state, info.tries, info.counter, f.Detail)
	switch info.state {
	case "active":
		f.Status, f.Code = OK, "active"
		f.Message = i18n.Both("doctor.sam.active.message", info.counter)
	case "blocked":
		f.Status, f.Code = Fail, "blocked"
		f.Message = i18n.Both("doctor.sam.blocked.message")
		f.Action = i18n.Both("doctor.sam.blocked.action")
	case "inactive":
		f.Status, f.Code = Warn, "inactive"
		f.Message = i18n.Both("doctor.sam.inactive.message", info.tries)
		code := r.cfg.SAM.ActivationCodeFile
		switch {
		case code == "":
			f.Action = i18n.Both("doctor.sam.inactive.action.no-code-file")
		case !ag.running:
			f.Action = i18n.Both("doctor.sam.inactive.action.start-agent", code)
		default:
			f.Action = i18n.Both("doctor.sam.inactive.action.code-refused", code)
		}
	default:
		f.Status, f.Code = Warn, "unknown-state"
		f.Message = i18n.Both("doctor.sam.unknown-state.message", info.state)
		f.Action = i18n.Both("doctor.sam.unknown-state.action")
	}
}

// probeSAM looks for the SAM: in the readers named by readers.sam, else in
// every reader holding a card. It returns the readers it could not probe
// (held exclusively).
func (r *run) probeSAM(ctx context.Context, readers []apdu.ReaderInfo) (*samInfo, []string, error) {
	var skipped []string
	var lastErr error
	for _, x := range readers {
		if !r.samCandidate(x.Name) || !x.CardPresent || x.Mute {
			continue
		}
		if x.Exclusive {
			skipped = append(skipped, x.Name)
			continue
		}
		info, err := bounded(ctx, r.o.CheckTimeout, func(ctx context.Context) (*samInfo, error) { return probeReader(ctx, x.Name) })
		if errors.Is(err, apdu.ErrSharingViolation) {
			skipped = append(skipped, x.Name)
			continue
		}
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", x.Name, err)
			continue
		}
		if info != nil {
			return info, skipped, nil
		}
	}
	return nil, skipped, lastErr
}

func (r *run) samCandidate(name string) bool {
	if match(r.cfg.Readers.Ignore, name) {
		return false
	}
	if len(r.cfg.Readers.SAM) > 0 {
		return match(r.cfg.Readers.SAM, name)
	}
	return true
}

func match(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// probeReader selects the SAM application on the card in reader inside a
// transaction and, when the card has it, reads its state (nothing else:
// no activation). Nothing else is sent: a citizen's card left in a reader
// sees one SELECT it refuses.
func probeReader(ctx context.Context, reader string) (*samInfo, error) {
	tr := pcsc.New(pcsc.Options{})
	defer tr.Close()
	card, err := tr.Connect(ctx, reader)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	if err := card.BeginTransaction(ctx); err != nil {
		return nil, err
	}
	defer card.EndTransaction()
	s, err := sam.Open(ctx, card)
	if se := (*apdu.StatusError)(nil); errors.As(err, &se) {
		return nil, nil // not a SAM
	}
	if err != nil {
		return nil, err
	}
	in, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	state := map[sam.State]string{sam.Active: "active", sam.Inactive: "inactive", sam.Blocked: "blocked"}[in.State]
	return &samInfo{reader: reader, serial: fmt.Sprintf("%X", in.Serial[:]), state: state, tries: in.TriesLeft, counter: in.Counter}, nil
}
