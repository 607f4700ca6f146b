// Command kpe-cardsim runs the virtual card lab: simulated smart cards that
// appear in pcscd's "Virtual PCD" readers (vsmartcard's vpcd driver), with a
// JSON HTTP control channel for inserting, removing and swapping cards and
// injecting faults.
//
//	kpe-cardsim -insert 0=testdata/cards/generic-fs.json
//	curl -s 127.0.0.1:35990/v1/slots
//
// The personalise subcommand makes a new card set (issuer PKI, master keys
// in a SAM, card images and a manifest) from a spec, e.g. a class set for a
// training:
//
//	kpe-cardsim personalise -spec testdata/cards/lab/spec.json -out /tmp/class
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/kpeapp" // card images of type kpe and ktpel
	_ "kpe-agent/lab/cardsim/samapp" // card images of type sam
	"kpe-agent/lab/labset"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kpe-cardsim:", err)
		os.Exit(1)
	}
}

type options struct {
	vpcdHost    string
	vpcdPort    int
	slots       int
	control     string
	allowRemote bool
	inserts     []insertion
	logLevel    slog.Level
	cardDir     string
}

type insertion struct {
	slot int
	path string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("kpe-cardsim", flag.ContinueOnError)
	fs.StringVar(&o.vpcdHost, "vpcd-host", cardsim.DefaultVPCDHost, "host where pcscd's vpcd driver listens")
	fs.IntVar(&o.vpcdPort, "vpcd-port", cardsim.DefaultVPCDPort, "vpcd port of slot 0 (slot n uses port+n)")
	fs.IntVar(&o.slots, "slots", cardsim.DefaultSlots, "number of slots")
	fs.StringVar(&o.control, "control", "127.0.0.1:35990", `control API listen address ("" disables it)`)
	fs.BoolVar(&o.allowRemote, "control-allow-remote", false, "allow a non-loopback control address")
	fs.StringVar(&o.cardDir, "card-dir", "", "base directory for relative card paths given to the control API")
	fs.Func("insert", "insert a card at start: SLOT=PATH (repeatable)", func(v string) error {
		ins, err := parseInsert(v)
		if err == nil {
			o.inserts = append(o.inserts, ins)
		}
		return err
	})
	fs.Func("log-level", "debug, info, warn or error (default info)", func(v string) error {
		return o.logLevel.UnmarshalText([]byte(v))
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.control != "" && !o.allowRemote {
		if err := checkLoopback(o.control); err != nil {
			return o, err
		}
	}
	return o, nil
}

// parseInsert parses "SLOT=PATH".
func parseInsert(v string) (insertion, error) {
	s, p, ok := strings.Cut(v, "=")
	if !ok || p == "" {
		return insertion{}, fmt.Errorf("want SLOT=PATH, got %q", v)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return insertion{}, fmt.Errorf("bad slot %q", s)
	}
	return insertion{slot: n, path: p}, nil
}

// checkLoopback refuses control addresses reachable from other hosts.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-control %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-control %q is not a loopback address (use -control-allow-remote to allow it)", addr)
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "personalise" {
		return personaliseCmd(args[1:])
	}
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))

	lab, err := cardsim.NewLab(cardsim.LabConfig{
		VPCDHost: o.vpcdHost,
		BasePort: o.vpcdPort,
		Slots:    o.slots,
		Logger:   log,
		CardDir:  o.cardDir,
	})
	if err != nil {
		return err
	}
	defer lab.Close()

	for _, ins := range o.inserts {
		c, err := cardsim.LoadCard(ins.path)
		if err != nil {
			return err
		}
		if err := lab.Insert(ins.slot, c); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var srv *http.Server
	srvErr := make(chan error, 1)
	if o.control != "" {
		ln, err := net.Listen("tcp", o.control)
		if err != nil {
			return fmt.Errorf("control: %w", err)
		}
		srv = &http.Server{Handler: lab.Handler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("control API listening", "addr", ln.Addr().String())
		go func() { srvErr <- srv.Serve(ln) }()
	}
	log.Info("card lab running", "vpcd", net.JoinHostPort(o.vpcdHost, strconv.Itoa(o.vpcdPort)), "slots", o.slots)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-srvErr:
		return fmt.Errorf("control: %w", err)
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	return lab.Close()
}

// personaliseCmd: kpe-cardsim personalise -spec FILE -out DIR.
func personaliseCmd(args []string) error {
	fs := flag.NewFlagSet("kpe-cardsim personalise", flag.ContinueOnError)
	spec := fs.String("spec", "", "card set spec (JSON, see testdata/cards/lab/spec.json)")
	out := fs.String("out", "", "output directory (cards/, trust/, lab.json)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *spec == "" || *out == "" || fs.NArg() > 0 {
		return errors.New("personalise: want -spec FILE -out DIR")
	}
	s, err := labset.LoadSpec(*spec)
	if err != nil {
		return err
	}
	m, err := labset.Generate(s, *out, time.Now())
	if err != nil {
		return err
	}
	for _, c := range m.Cards {
		fmt.Printf("%-40s %-14s %s\n", c.Image, c.Kind, c.Expect)
	}
	fmt.Printf("manifest: %s\n", *out+"/lab.json")
	return nil
}
