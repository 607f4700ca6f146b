// Command kpe-cardsim is the card lab's tool. Its serve command runs the
// virtual card lab: simulated smart cards that appear in pcscd's "Virtual
// PCD" readers (vsmartcard's vpcd driver), with a JSON HTTP control channel
// for inserting, removing and swapping cards and injecting faults.
//
//	kpe-cardsim serve --insert 0=testdata/cards/generic-fs.json
//	curl -s 127.0.0.1:35990/v1/slots
//
// The other commands make what a lab needs, so that the shipped binaries
// (kpe-agent, kpectl, kpe-backoffice) never link the lab:
//
//	kpe-cardsim personalise --spec testdata/cards/lab/spec.json --out /tmp/class   a new card set
//	kpe-cardsim secrets --lab testdata/cards/lab --out /tmp/secrets                its SAM code and KTP-el secrets
//	kpe-cardsim pki --dir /tmp/pki --terminal lab-01                                 lab TLS keys for the back office
//	kpe-cardsim issuer-cert --ca-cert C --ca-key K --csr ds.csr --out ds.pem         the back office's issuer key certified
//	kpe-cardsim bio gen --out /tmp/bio --level hard                                  synthetic fingerprint sets
//	kpe-cardsim fleet --pg DSN --terminals 2000 --records 100                        load-test a back office
//
// and two that make run (scripts/run-lab.sh) uses to stop everything it
// started and to name what holds a port it needs: tether, check-ports.
//
// Without a command it prints its usage and exits 2. See docs/card-lab.md.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kpe-agent/internal/clikit"
	"kpe-agent/lab/cardsim"
	_ "kpe-agent/lab/cardsim/kpeapp" // card images of type kpe and ktpel
	_ "kpe-agent/lab/cardsim/samapp" // card images of type sam
	"kpe-agent/lab/labpki"
	"kpe-agent/lab/labset"
	"kpe-agent/lab/synth"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return clikit.Main(rootCommand(stdout, stderr), args, stdout, stderr)
}

func rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kpe-cardsim",
		Short: "The virtual card lab: simulated cards in pcscd's virtual readers, and lab sets",
		Long: `kpe-cardsim runs the virtual card lab (serve): simulated KPE, KPE Tambahan, KTP-el and SAM cards
in pcscd's "Virtual PCD" readers (vsmartcard's vpcd driver), with an HTTP control channel. Its other
commands make lab card sets, their secrets, lab TLS keys for the back office and synthetic
fingerprint sets. Lab keys only: never for real cards. See docs/card-lab.md.

Without a command kpe-cardsim prints this usage and exits 2.
Exit codes: 0 success; 1 failure; 2 usage error.`,
		Example: `  kpe-cardsim serve --card-dir . --insert 0=testdata/cards/lab/cards/kpe-budi.json --insert 1=testdata/cards/lab/cards/sam.json
  kpe-cardsim secrets --lab testdata/cards/lab --out /tmp/lab-secrets
  kpe-cardsim bio gen --out /tmp/kpe-bio/easy --level easy`,
	}
	root.AddCommand(serveCommand(stdout, stderr), personaliseCommand(stdout), secretsCommand(stdout), pkiCommand(stdout), issuerCertCommand(stdout), bioCommand(stdout), fleetCommand(stdout),
		tetherCommand(), checkPortsCommand(stdout))
	return root
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

// insertFlag is --insert SLOT=PATH, repeatable.
type insertFlag struct{ o *options }

func (f insertFlag) Type() string   { return "SLOT=PATH" }
func (f insertFlag) String() string { return "" }
func (f insertFlag) Set(v string) error {
	ins, err := parseInsert(v)
	if err == nil {
		f.o.inserts = append(f.o.inserts, ins)
	}
	return err
}

// levelFlag is --log-level.
type levelFlag struct{ l *slog.Level }

func (f levelFlag) Type() string       { return "level" }
func (f levelFlag) String() string     { return f.l.String() }
func (f levelFlag) Set(v string) error { return f.l.UnmarshalText([]byte(v)) }

// serveFlags defines serve's flags on cmd, bound to o.
func serveFlags(cmd *cobra.Command, o *options) {
	f := cmd.Flags()
	f.StringVar(&o.vpcdHost, "vpcd-host", cardsim.DefaultVPCDHost, "host where pcscd's vpcd driver listens")
	f.IntVar(&o.vpcdPort, "vpcd-port", cardsim.DefaultVPCDPort, "vpcd port of slot 0 (slot n uses port+n)")
	f.IntVar(&o.slots, "slots", cardsim.DefaultSlots, "number of slots")
	f.StringVar(&o.control, "control", "127.0.0.1:35990", `control API listen address ("" disables it)`)
	f.BoolVar(&o.allowRemote, "control-allow-remote", false, "allow a non-loopback control address")
	f.StringVar(&o.cardDir, "card-dir", "", "base directory for relative card paths given to the control API")
	f.Var(insertFlag{o}, "insert", "insert a card at start: SLOT=PATH (repeatable)")
	f.Var(levelFlag{&o.logLevel}, "log-level", "debug, info, warn or error")
}

// check validates the options the flag types do not.
func (o options) check() error {
	if o.control != "" && !o.allowRemote {
		return checkLoopback(o.control)
	}
	return nil
}

func serveCommand(_, stderr io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "serve [--insert SLOT=PATH ...] [--control ADDR] [flags]",
		Short: "Run the card lab on pcscd's virtual readers until Ctrl-C",
		Long: `Runs the card lab: each slot is a vpcd reader of pcscd ("Virtual PCD 00 0n"). Cards are inserted
at start with --insert, and later through the control API (GET /v1/slots, PUT /v1/slots/N,
DELETE /v1/slots/N, POST /v1/slots/N/swap, PUT /v1/slots/N/finger; docs/card-lab.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return clikit.UsageError{Err: err}
			}
			return serve(cmd.Context(), o, stderr)
		},
	}
	serveFlags(cmd, &o)
	return cmd
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
		return fmt.Errorf("--control %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--control %q is not a loopback address (use --control-allow-remote to allow it)", addr)
}

// serve runs the lab until ctx ends.
func serve(ctx context.Context, o options, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))

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

// personaliseCommand: kpe-cardsim personalise --spec FILE --out DIR.
func personaliseCommand(stdout io.Writer) *cobra.Command {
	var spec, out string
	cmd := &cobra.Command{
		Use:   "personalise --spec FILE --out DIR",
		Short: "Make a card set from a spec: issuer PKI, SAM, card images and lab.json",
		Long: `Makes a new card set (issuer PKI, master keys in a SAM, card images and a manifest, lab.json) from
a spec, e.g. a class set for a training. testdata/cards/lab/spec.json is the sample set's spec.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := labset.LoadSpec(spec)
			if err != nil {
				return err
			}
			m, err := labset.Generate(s, out, time.Now())
			if err != nil {
				return err
			}
			for _, c := range m.Cards {
				fmt.Fprintf(stdout, "%-40s %-14s %s\n", c.Image, c.Kind, c.Expect)
			}
			fmt.Fprintf(stdout, "manifest: %s\n", out+"/lab.json")
			return nil
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "card set spec (JSON, see testdata/cards/lab/spec.json)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output directory (cards/, trust/, lab.json)")
	_ = cmd.MarkFlagRequired("spec")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// secretsCommand: kpe-cardsim secrets --lab DIR --out DIR.
func secretsCommand(stdout io.Writer) *cobra.Command {
	var lab, out string
	cmd := &cobra.Command{
		Use:   "secrets --lab DIR --out DIR",
		Short: "Write a lab set's SAM activation code and KTP-el secrets to owner-only files",
		Long: `Writes the lab set's SAM activation code (sam-code) and its two KTP-el installation secrets
(ktp-secrets, one per line) into the --out directory, mode 0600: the files kpectl read takes with
--sam-code-file and --ktp-secrets-file, and the agent with sam.activation_code_file and
sam.ktp_secrets_file. It prints the kpectl read flags for the set, trust lists included.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			m, err := labset.LoadManifest(lab)
			if err != nil {
				return err
			}
			f, err := m.WriteSecrets(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "SAM activation code:  %s\nKTP-el secrets:       %s\n", f.SAMCode, f.KTPSecrets)
			flags := fmt.Sprintf("--sam-code-file %s --ktp-secrets-file %s", f.SAMCode, f.KTPSecrets)
			for _, t := range []struct{ flag, name string }{{"--trust-bkn", "bkn"}, {"--trust-dukcapil", "dukcapil"}} {
				if p, err := m.TrustFile(lab, t.name); err == nil {
					flags = t.flag + " " + p + " " + flags
				}
			}
			fmt.Fprintf(stdout, "kpectl read flags:    %s\n", flags)
			return nil
		},
	}
	cmd.Flags().StringVar(&lab, "lab", "", "the lab set's directory (holding lab.json)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "directory for the two files (created 0700 when missing)")
	_ = cmd.MarkFlagRequired("lab")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// pkiCommand: kpe-cardsim pki --dir DIR [--terminal ID].
func pkiCommand(stdout io.Writer) *cobra.Command {
	var dir, terminal string
	cmd := &cobra.Command{
		Use:   "pki --dir DIR [--terminal ID]",
		Short: "Make lab TLS keys for the back office: a CA, a server and one terminal's client certificate",
		Long: `Makes a lab TLS CA, a server certificate and one terminal's client certificate as PEM files in
DIR (keys 0600), for kpe-backoffice serve and the agent's sync.client_cert, sync.client_key and
sync.ca. Existing files are kept: a lab keeps its keys across restarts.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f, err := labpki.Write(dir, terminal)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "TLS CA %s\nserver %s %s\nterminal %s %s\n", f.TLSCA, f.ServerCert, f.ServerKey, f.TerminalCert, f.TerminalKey)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "directory for the PEM files")
	cmd.Flags().StringVar(&terminal, "terminal", "lab-01", "terminal id (the client certificate's common name)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// bioCommand: kpe-cardsim bio gen --out DIR ...
func bioCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bio",
		Short: "Synthetic fingerprint sets (bio gen) for kpectl bio bench",
	}
	var out, level string
	var fingers, impressions, impostors int
	var seed uint64
	gen := &cobra.Command{
		Use:   "gen --out DIR [--level easy|hard] [--fingers N] [--impressions K] [--impostors N] [--seed S]",
		Short: "Write a synthetic set: ISO/IEC 19794-2 templates and pairs.csv",
		Long: `Writes FINGER_N.iso minutiae templates of synthetic fingers and pairs.csv (a,b,genuine) into
DIR, for kpectl bio bench. The same seed gives the same set (docs/fingerprint-synthesis.md).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			lv := map[string]synth.Level{"easy": synth.Easy, "hard": synth.Hard}[level]
			switch {
			case lv == 0:
				return clikit.Usagef("--level %q: want easy or hard", level)
			case fingers < 2 || impressions < 2:
				return clikit.Usagef("want at least 2 --fingers and 2 --impressions")
			case impostors < 0:
				return clikit.Usagef("--impostors must not be negative")
			}
			if err := synth.WriteSet(out, synth.SetOptions{Fingers: fingers, Impressions: impressions, Level: lv, Seed: seed, ImpostorPairs: impostors}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d fingers x %d impressions (%s), pairs.csv\n", out, fingers, impressions, level)
			return nil
		},
	}
	f := gen.Flags()
	f.StringVarP(&out, "out", "o", "", "output directory")
	f.StringVar(&level, "level", "hard", "easy or hard")
	f.IntVar(&fingers, "fingers", 300, "synthetic fingers")
	f.IntVar(&impressions, "impressions", 4, "impressions per finger")
	f.IntVar(&impostors, "impostors", 50000, "impostor pairs in pairs.csv (0: all)")
	f.Uint64Var(&seed, "seed", 1, "seed (the same seed gives the same set)")
	_ = gen.MarkFlagRequired("out")
	cmd.AddCommand(gen)
	return cmd
}
