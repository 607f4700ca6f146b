package browsertest

import (
	"context"
	"fmt"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// What the benchmarks read from the browser: a script run in every new
// document, the page's JavaScript heap after a forced garbage collection,
// and the bytes of every request on the wire.

// OnNewDocument makes the tab run script in every document it loads from
// now on, before the document's own scripts
// (Page.addScriptToEvaluateOnNewDocument). The page's
// Content-Security-Policy does not apply to it: the browser runs it on the
// test's behalf.
func (b *Browser) OnNewDocument(script string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		b.fail("script on new documents", err)
	}
}

// Heap is the page's JavaScript heap (Performance.getMetrics): the bytes
// in use and the heap's size.
type Heap struct {
	Used, Total int64
}

// HeapAfterGC forces a full garbage collection of the page's JavaScript
// heap (HeapProfiler.collectGarbage) and then reads its size
// (Performance.getMetrics' JSHeapUsedSize and JSHeapTotalSize).
func (b *Browser) HeapAfterGC() Heap {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	var h Heap
	err := func() error {
		if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{}); err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
			return err
		}
		m, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			return err
		}
		found := 0
		for _, x := range m.Metrics {
			switch x.Name {
			case "JSHeapUsedSize":
				h.Used = int64(x.Value)
				found++
			case "JSHeapTotalSize":
				h.Total = int64(x.Value)
				found++
			}
		}
		if found != 2 {
			return fmt.Errorf("Performance.getMetrics gave no JSHeapUsedSize and JSHeapTotalSize: %d metrics", len(m.Metrics))
		}
		return nil
	}()
	if err != nil {
		b.fail("the page's heap", err)
	}
	return h
}

// Transfer is one request of the tab as the Network domain saw it.
type Transfer struct {
	URL    string
	Type   string // the resource type: Document, Stylesheet, Script, Image, Fetch, Other, ...
	MIME   string
	Status int
	// Bytes is what the response took on the wire so far, headers
	// included (loadingFinished's encodedDataLength once it has finished;
	// for a response still streaming, its headers and the body received);
	// Body is the body's encoded bytes alone.
	Bytes, Body int64
	// Done: the response has finished loading (or failed).
	Done bool
}

// Recorder keeps the tab's requests from RecordNetwork on.
type Recorder struct {
	b    *Browser
	stop context.CancelFunc

	mu    sync.Mutex
	order []network.RequestID
	reqs  map[network.RequestID]*Transfer
}

// RecordNetwork enables the Network domain and records every request the
// tab makes until Stop.
func (b *Browser) RecordNetwork() *Recorder {
	b.t.Helper()
	lctx, stop := context.WithCancel(b.ctx)
	r := &Recorder{b: b, stop: stop, reqs: map[network.RequestID]*Transfer{}}
	if err := chromedp.Listen(lctx, r.event); err != nil {
		stop()
		b.fail("listen to the network", err)
	}
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		stop()
		b.fail("enable the network domain", err)
	}
	return r
}

// event runs on chromedp's reading goroutine: it only files the numbers.
func (r *Recorder) event(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	get := func(id network.RequestID) *Transfer {
		x, ok := r.reqs[id]
		if !ok {
			x = &Transfer{}
			r.reqs[id] = x
			r.order = append(r.order, id)
		}
		return x
	}
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		x := get(e.RequestID)
		x.URL, x.Type = e.Request.URL, string(e.Type)
	case *network.EventResponseReceived:
		x := get(e.RequestID)
		x.Status, x.MIME, x.Type = int(e.Response.Status), e.Response.MimeType, string(e.Type)
		x.Bytes = max(x.Bytes, int64(e.Response.EncodedDataLength))
	case *network.EventDataReceived:
		x := get(e.RequestID)
		x.Bytes += e.EncodedDataLength
		x.Body += e.EncodedDataLength
	case *network.EventLoadingFinished:
		x := get(e.RequestID)
		x.Bytes, x.Done = int64(e.EncodedDataLength), true
		if e.EncodedBodyLength > 0 {
			x.Body = int64(e.EncodedBodyLength)
		}
	case *network.EventLoadingFailed:
		get(e.RequestID).Done = true
	}
}

// Transfers returns the requests so far, in the order they started.
func (r *Recorder) Transfers() []Transfer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Transfer, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, *r.reqs[id])
	}
	return out
}

// Reset forgets the requests so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = nil
	clear(r.reqs)
}

// Stop disables the Network domain and ends the recording; Transfers
// still answers.
func (r *Recorder) Stop() {
	r.b.t.Helper()
	ctx, cancel := r.b.step()
	defer cancel()
	_, err := chromedp.Call(ctx, network.Disable, cdp.Empty{})
	r.stop()
	if err != nil {
		r.b.fail("disable the network domain", err)
	}
}

// Sum adds up the bytes of the transfers for which keep is true (nil:
// all).
func Sum(ts []Transfer, keep func(Transfer) bool) (bytes, body int64) {
	for _, x := range ts {
		if keep == nil || keep(x) {
			bytes += x.Bytes
			body += x.Body
		}
	}
	return bytes, body
}
