package main

// The OS service wrapper (github.com/kardianos/service): `kpe-agent run`
// runs the agent the same way in a terminal (Ctrl-C or SIGTERM stop it),
// under systemd or SysV init, and under the Windows service manager; the
// install, uninstall, start, stop and status commands manage the service.
// docs/install.md describes the result on each platform.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kardianos/service"
)

const (
	serviceName        = "kpe-agent"
	serviceDisplayName = "KPE terminal agent"
	serviceDescription = "KPE / KTP-el card terminal agent: reads civil-servant and identity cards over PC/SC, " +
		"records SAM-signed authentication codes and syncs them to the back office"

	// serviceAccount is the Linux system account the packages create; the
	// service runs as it when it exists.
	serviceAccount = "kpe-agent"

	// agentStopTimeout bounds the wait for the agent after a stop request
	// (the agent's own shutdown grace defaults to 10 s). The systemd unit's
	// TimeoutStopSec is longer, so the process gets to report the timeout.
	agentStopTimeout = 30 * time.Second
)

// Exit codes of `kpe-agent status` (the LSB init-script convention).
const (
	exitStatusRunning      = 0
	exitStatusError        = 1 // the status could not be determined
	exitStatusStopped      = 3 // installed, not running (also: failed)
	exitStatusNotInstalled = 4
)

// Errors of the service wrapper.
var (
	// errAgentExited: the agent returned without an error although nobody
	// asked it to stop. The service manager should restart it.
	errAgentExited = errors.New("the agent stopped without being asked to")
	// errStopTimeout: the agent did not return in time after a stop request.
	errStopTimeout = errors.New("the agent did not stop in time")
	// errAlreadyInstalled and errNotInstalled are the install/uninstall
	// preconditions.
	errAlreadyInstalled = errors.New("the service is already installed")
	errNotInstalled     = errors.New("the service is not installed")
)

// agentFunc is runAgent's signature (run.go); tests pass their own.
type agentFunc func(ctx context.Context, o runOptions, ready func()) error

// program adapts the agent to kardianos's service.Interface: Start launches
// the agent in a goroutine, Stop cancels it and waits (bounded) for it.
type program struct {
	opts        runOptions
	agent       agentFunc
	stopTimeout time.Duration
	stderr      io.Writer

	cancel   context.CancelFunc
	done     chan struct{} // closed when the agent returned
	err      error         // the agent's result; read only after done is closed
	stopping atomic.Bool   // set before Stop cancels the agent
}

func newProgram(o runOptions, agent agentFunc, stopTimeout time.Duration, stderr io.Writer) *program {
	return &program{opts: o, agent: agent, stopTimeout: stopTimeout, stderr: stderr, done: make(chan struct{})}
}

// Start implements service.Interface; it must not block.
func (p *program) Start(service.Service) error {
	if p.cancel != nil {
		return errors.New("the agent was already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		defer func() {
			if r := recover(); r != nil {
				p.err = fmt.Errorf("the agent panicked: %v\n%s", r, debug.Stack())
			}
		}()
		p.err = p.agent(ctx, p.opts, nil)
	}()
	return nil
}

// Stop implements service.Interface: cancel the agent and wait for it, at
// most stopTimeout. It returns the agent's error, errAgentExited when the
// agent had returned nil by itself, or errStopTimeout.
func (p *program) Stop(service.Service) error {
	if p.cancel == nil {
		return nil
	}
	exitedByItself := isClosed(p.done) && !p.stopping.Load()
	p.stopping.Store(true)
	p.cancel()
	t := time.NewTimer(p.stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return fmt.Errorf("%w (waited %s)", errStopTimeout, p.stopTimeout)
	}
	if p.err != nil {
		return p.err
	}
	if exitedByItself {
		return errAgentExited
	}
	return nil
}

// runWait is kardianos's RunWait option on Unix: Run returns (and calls
// Stop) on SIGTERM or SIGINT, as kardianos's default does, and also when
// the agent returned by itself, so the process exits and the service
// manager can restart it. A second signal during the shutdown exits at once.
func (p *program) runWait() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	if runWaitHook != nil {
		runWaitHook()
	}
	select {
	case s := <-sig:
		go func() {
			<-sig
			fmt.Fprintf(p.stderr, "kpe-agent: second signal (after %v) during the shutdown: exiting now\n", s)
			os.Exit(1)
		}()
		if runSignalHook != nil {
			runSignalHook(s)
		}
	case <-p.done:
		signal.Stop(sig)
	}
}

// runWaitHook, when set (by tests), runs once the signal handler is in place.
var runWaitHook func()

// runSignalHook, when set (by tests), runs once the first signal was taken:
// a signal sent after it is a second one, not merged with the first.
var runSignalHook func(os.Signal)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// newServiceConfig is the service definition for goos. configFile must be
// absolute (the service manager's working directory is not the caller's).
// user and group only apply to the installed definition ("" runs the
// service as root, or as LocalSystem on Windows). Option names are
// kardianos's (service.go and service_windows.go of v1.2.4; the test checks
// they still exist there).
func newServiceConfig(goos, configFile, user, group string) *service.Config {
	c := &service.Config{
		Name:        serviceName,
		DisplayName: serviceDisplayName,
		Description: serviceDescription,
		UserName:    user,
		Arguments:   []string{"run", "--config", configFile},
		Option:      service.KeyValue{},
	}
	if goos == "windows" {
		// kardianos installs no recovery action unless OnFailure is set; it
		// sets one (restart after 5 s, failure count reset after a day).
		// install.ps1 adds the second and third restarts and the failure
		// flag with sc.exe.
		c.Option["StartType"] = "automatic"
		// Not delayed: the counter needs the agent right after boot; the
		// agent waits for the Smart Card service by itself.
		c.Option["DelayedAutoStart"] = false
		c.Option["OnFailure"] = "restart"
		c.Option["OnFailureDelayDuration"] = "5s"
		c.Option["OnFailureResetPeriod"] = 86400 // seconds; kardianos reads an int
		return c
	}
	// Linux: the lines go into the systemd unit's [Unit] section. Debian's
	// pcscd ships pcscd.socket (socket activation) and pcscd.service.
	c.Dependencies = []string{
		"After=network-online.target pcscd.socket pcscd.service",
		"Wants=network-online.target pcscd.socket",
	}
	c.Option["Restart"] = "always"
	c.Option["ReloadSignal"] = "HUP" // systemctl reload: the agent rereads its configuration
	c.Option["SystemdScript"] = systemdUnitTemplate
	c.Option[optionGroup] = group
	return c
}

// optionGroup is our own key in Config.Option (kardianos ignores keys it
// does not know); systemdUnitTemplate reads it for Group=.
const optionGroup = "KPEGroup"

// systemdUnitTemplate replaces kardianos's default unit (RestartSec=120,
// no hardening). kardianos renders it with its Config plus Path, Restart
// and a few other fields, and the functions cmd (quote) and cmdEscape.
// installer/linux/kpe-agent.service is this template rendered for the
// packages (the test compares them).
const systemdUnitTemplate = `[Unit]
Description={{.Description}}
ConditionFileIsExecutable={{.Path|cmdEscape}}
{{range .Dependencies}}{{.}}
{{end -}}
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=main
ExecStart={{.Path|cmdEscape}}{{range .Arguments}} {{.|cmd}}{{end}}
{{- if .UserName}}
User={{.UserName}}
{{- with index .Option "KPEGroup"}}
Group={{.}}
{{- end}}
{{- end}}
{{- if .ReloadSignal}}
ExecReload=/bin/kill -{{.ReloadSignal}} $MAINPID
{{- end}}
EnvironmentFile=-/etc/default/{{.Name}}
EnvironmentFile=-/etc/sysconfig/{{.Name}}
Restart={{.Restart}}
RestartSec=5
RestartPreventExitStatus=78
TimeoutStopSec=45
StateDirectory={{.Name}}
StateDirectoryMode=0750
LogsDirectory={{.Name}}
LogsDirectoryMode=0750
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=-/var/lib/{{.Name}} -/var/log/{{.Name}}
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
UMask=0077
CapabilityBoundingSet=
AmbientCapabilities=
DevicePolicy=closed
DeviceAllow=char-usb_device rw
DeviceAllow=char-hidraw rw
PrivateMounts=yes
ProtectKernelLogs=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RemoveIPC=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallFilter=adjtimex
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`

// runService runs the agent until the service manager, Ctrl-C or SIGTERM
// stops it. The exit code is 78 (exitConfig) when the configuration keeps
// the agent from starting, 1 when the agent failed, stopped by itself or
// did not stop in time.
func runService(o runOptions, stderr io.Writer) int {
	return runServiceWith(o, stderr, runAgent, agentStopTimeout)
}

func runServiceWith(o runOptions, stderr io.Writer, agent agentFunc, stopTimeout time.Duration) int {
	p := newProgram(o, agent, stopTimeout, stderr)
	cfg := newServiceConfig(runtime.GOOS, o.ConfigFile, "", "")
	cfg.Option["RunWait"] = p.runWait
	s, err := service.New(p, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "kpe-agent run: %v\n", err)
		return 1
	}
	var logger service.Logger
	if !service.Interactive() {
		// The system log (syslog, the Windows event log) as well as stderr.
		if logger, err = s.SystemLogger(nil); err != nil {
			fmt.Fprintf(stderr, "kpe-agent run: no system logger (%v); logging to standard error only\n", err)
			logger = nil
		}
	}
	watchAgent(p, stderr, logger)
	if err := s.Run(); err != nil {
		code := 1
		if errors.As(err, new(configError)) {
			code = exitConfig
			err = fmt.Errorf("%w\n(the configuration must be fixed: check it with kpe-agent check-config, then start the service; it is not restarted until then)", err)
		}
		fmt.Fprintf(stderr, "kpe-agent: %v\n", err)
		if logger != nil {
			_ = logger.Errorf("kpe-agent: %v", err)
		}
		return code
	}
	return 0
}

// controlService is the service handle of install/uninstall/start/stop/
// status; only the name matters for the latter four.
func controlService(cfg *service.Config) (service.Service, error) {
	return service.New(newProgram(runOptions{}, nil, 0, io.Discard), cfg)
}

func installCommand(configFile, userName string, userSet bool, stdout, stderr io.Writer) int {
	if err := install(configFile, userName, userSet, stdout); err != nil {
		fmt.Fprintf(stderr, "kpe-agent install: %v\n", err)
		return 1
	}
	return 0
}

func install(configFile, userName string, userSet bool, stdout io.Writer) error {
	if err := checkServicePrivileges(); err != nil {
		return err
	}
	abs, err := filepath.Abs(configFile)
	if err != nil {
		return fmt.Errorf("config file %q: %w", configFile, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return fmt.Errorf("config file: %w (write it first, or pass --config)", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("config file %s is not a regular file", abs)
	}
	if unit := packagedUnit(); unit != "" {
		return fmt.Errorf("%w by the kpe-agent package (%s): configure it in /etc/kpe-agent/agent.yaml, "+
			"or override the unit with systemctl edit kpe-agent", errAlreadyInstalled, unit)
	}
	user, group, err := serviceUser(userName, userSet)
	if err != nil {
		return err
	}
	tokenFile, err := tokenFileFromConfig(abs)
	if err != nil {
		return err
	}

	cfg := newServiceConfig(runtime.GOOS, abs, user, group)
	s, err := controlService(cfg)
	if err != nil {
		return err
	}
	switch _, err := serviceStatus(s); {
	case err == nil, errors.Is(err, errServiceFailed):
		return fmt.Errorf("%w (%s); run kpe-agent uninstall first", errAlreadyInstalled, s.Platform())
	case !errors.Is(err, service.ErrNotInstalled):
		return fmt.Errorf("checking whether the service exists: %w", err)
	}
	tg, tokenNote := tokenGroup(user, group)
	created, err := ensureAPIToken(tokenFile, tg)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("registering with %s: %w", s.Platform(), err)
	}

	fmt.Fprintf(stdout, "kpe-agent: service installed (%s", s.Platform())
	if p := definitionPath(s.Platform()); p != "" {
		fmt.Fprintf(stdout, ": %s", p)
	}
	fmt.Fprintln(stdout, ")")
	exe, _ := os.Executable()
	fmt.Fprintf(stdout, "  runs:      %s run --config %s\n", exe, abs)
	if user == "" {
		user = defaultAccountName()
	}
	fmt.Fprintf(stdout, "  as:        %s\n", user)
	state := "exists, left as is"
	if created {
		state = "created"
	}
	fmt.Fprintf(stdout, "  API token: %s (%s)\n", tokenFile, state)
	if created && tokenNote != "" {
		fmt.Fprintf(stdout, "  note:      %s\n", tokenNote)
	}
	for _, w := range platformWarnings(s.Platform(), user) {
		fmt.Fprintf(stdout, "  note:      %s\n", w)
	}
	fmt.Fprintln(stdout, "Start it with: kpe-agent start")
	return nil
}

func controlCommand(cmd string, stdout, stderr io.Writer) int {
	if err := control(cmd, stdout); err != nil {
		fmt.Fprintf(stderr, "kpe-agent %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func control(cmd string, stdout io.Writer) error {
	if err := checkServicePrivileges(); err != nil {
		return err
	}
	s, err := controlService(newServiceConfig(runtime.GOOS, "", "", ""))
	if err != nil {
		return err
	}
	st, err := serviceStatus(s)
	if errors.Is(err, service.ErrNotInstalled) {
		return fmt.Errorf("%w (%s)", errNotInstalled, s.Platform())
	}
	switch cmd {
	case "start":
		if err == nil && st == service.StatusRunning {
			fmt.Fprintln(stdout, "kpe-agent: already running")
			return nil
		}
		if err := s.Start(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "kpe-agent: started")
	case "stop":
		if err == nil && st == service.StatusStopped {
			fmt.Fprintln(stdout, "kpe-agent: not running")
			return nil
		}
		if err := s.Stop(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "kpe-agent: stopped")
	case "uninstall":
		if unit := packagedUnit(); unit != "" {
			return fmt.Errorf("the service belongs to the kpe-agent package (%s); remove the package instead", unit)
		}
		if err == nil && st == service.StatusRunning {
			if err := s.Stop(); err != nil {
				return fmt.Errorf("stopping the service: %w", err)
			}
		}
		if err := s.Uninstall(); err != nil {
			return err
		}
		if err := afterUninstall(s.Platform()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kpe-agent: service uninstalled (%s); the configuration, the API token and the data are kept\n", s.Platform())
	}
	return nil
}

func statusCommand(stdout, stderr io.Writer) int {
	s, err := controlService(newServiceConfig(runtime.GOOS, "", "", ""))
	if err != nil {
		fmt.Fprintf(stderr, "kpe-agent status: %v\n", err)
		return exitStatusError
	}
	st, err := serviceStatus(s)
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		fmt.Fprintf(stdout, "not installed (%s)\n", s.Platform())
		return exitStatusNotInstalled
	case errors.Is(err, errServiceFailed):
		fmt.Fprintf(stdout, "failed (%s)\n", s.Platform())
		return exitStatusStopped
	case err != nil:
		fmt.Fprintf(stderr, "kpe-agent status: %v\n", err)
		return exitStatusError
	case st == service.StatusRunning:
		fmt.Fprintf(stdout, "running (%s)\n", s.Platform())
		return exitStatusRunning
	case st == service.StatusStopped:
		fmt.Fprintf(stdout, "stopped (%s)\n", s.Platform())
		return exitStatusStopped
	}
	fmt.Fprintf(stdout, "unknown (%s)\n", s.Platform())
	return exitStatusError
}

// errServiceFailed: systemd reports the unit as failed.
var errServiceFailed = errors.New("the service is in the failed state")
