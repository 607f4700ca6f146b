package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"kpe-agent/agent/doctor"
	"kpe-agent/internal/clikit"
	"kpe-agent/internal/i18n"
)

// doctorOptions are kpectl doctor's flags.
type doctorOptions struct {
	asJSON                bool
	timeout, checkTimeout time.Duration
}

// doctor: kpectl doctor [--json] [--timeout 40s] [--check-timeout 5s].
// One line per check with its mark, the technical detail and the action;
// exit code 1 when a check fails.
func (c *cli) doctor(ctx context.Context, o doctorOptions) error {
	if o.timeout <= 0 || o.checkTimeout <= 0 {
		return clikit.Usagef("--timeout and --check-timeout must be positive")
	}
	cfg, cfgErr := c.loadConfig(c.configFile)
	cl, tokenErr, err := c.agentFor(cfg)
	if err != nil {
		return err
	}
	p := c.newProgress()
	rep := doctor.Run(ctx, doctor.Options{
		Config: &cfg, ConfigErr: cfgErr, Agent: cl, TokenErr: tokenErr,
		Timeout: o.timeout, CheckTimeout: o.checkTimeout,
		Progress: func(done, total int, f doctor.Finding) {
			p.Show(c.msg.Doctor.Checking+" %s", done, total, f.ID)
		},
	})
	p.Clear()
	if o.asJSON {
		if err := c.printJSON(rep); err != nil {
			return err
		}
	} else {
		c.printReport(rep)
	}
	if rep.Failed() {
		return errReported
	}
	return nil
}

func (c *cli) printReport(rep doctor.Report) {
	d := c.msg.Doctor
	fmt.Fprintf(c.out, d.Title+"\n\n", rep.Started.Local().Format("2006-01-02 15:04:05"), time.Duration(rep.Took).Round(100*time.Millisecond))
	width := 0
	for _, m := range d.Marks {
		width = max(width, len(m)+2)
	}
	indent := strings.Repeat(" ", width+1+13)
	for _, f := range rep.Findings {
		mark := "[" + d.Marks[f.Status] + "]"
		fmt.Fprintf(c.out, "%-*s %-12s %s\n", width, mark, f.ID, f.Message.In(i18n.Lang(c.lang)))
		if f.Detail != "" {
			fmt.Fprintf(c.out, "%s%s\n", indent, oneLine(f.Detail))
		}
		if !f.Action.IsZero() && f.Status != doctor.OK {
			fmt.Fprintf(c.out, "%s→ %s: %s\n", indent, d.Action, f.Action.In(i18n.Lang(c.lang)))
		}
	}
	s := rep.Summary
	fmt.Fprintf(c.out, "\n"+d.Summary+"\n", s[doctor.OK], s[doctor.Warn], s[doctor.Fail], s[doctor.Skip])
}
