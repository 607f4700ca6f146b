package installer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"kpe-agent/agent/daemon"
	"kpe-agent/internal/pgtest"
	"kpe-agent/lab/labpki"
	"kpe-agent/sync/backoffice"
	"kpe-agent/sync/record"
	"kpe-agent/sync/wire"
)

// The Grafana dashboards (installer/grafana) and the Prometheus alert
// rules (installer/prometheus) are the monitoring that ships with the
// project (docs/backoffice.md, Metrics). This file checks they parse as
// what they claim to be and that every metric they use is exported: by a
// running back office's /metrics (on PostgreSQL, so the pool metrics are
// there) or by the agent (daemon.MetricNames).

// synthetic are the series Prometheus makes itself for every target.
var synthetic = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// dashboard is the part of Grafana's dashboard JSON model checked here.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name, Type, Query string
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// rules is Prometheus's rule file format, strictly.
type rules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestMonitoringUsesExportedMetrics(t *testing.T) {
	exported := map[string]string{}
	for _, n := range synthetic {
		exported[n] = "Prometheus"
	}
	agent, err := daemon.MetricNames()
	require.NoError(t, err)
	require.Contains(t, agent, "kpe_outbox_oldest_unsynced_seconds")
	require.Contains(t, agent, "kpe_card_sessions_total", "labelled metrics are in the zero snapshot")
	for _, n := range agent {
		exported[n] = "agent"
	}
	bo := backofficeMetricNames(t)
	require.Contains(t, bo, "kpe_backoffice_db_pool_acquired_conns")
	for _, n := range bo {
		exported[n] = "back office"
	}

	uses := map[string][]string{} // metric → where
	for _, name := range []string{"backoffice.json", "agent-fleet.json"} {
		for where, expr := range dashboardExprs(t, filepath.Join("grafana", name)) {
			for _, m := range promqlMetrics(t, expr) {
				uses[m] = append(uses[m], where)
			}
		}
	}
	alerts := ruleExprs(t, filepath.Join("prometheus", "kpe-alerts.yml"))
	for _, want := range []string{"KPETerminalsSilent", "KPEBacklogOld", "KPESAMCounterGap", "KPESAMCounterConflict", "KPEIngestErrors"} {
		assert.Contains(t, alerts, want, "the alert rules issue 17 asks for")
	}
	for where, expr := range alerts {
		for _, m := range promqlMetrics(t, expr) {
			uses[m] = append(uses[m], where)
		}
	}
	require.NotEmpty(t, uses)
	var agentUsed, boUsed int
	for m, where := range uses {
		switch exported[m] {
		case "":
			t.Errorf("metric %s (used in %s) is exported by neither the back office nor the agent", m, strings.Join(where, ", "))
		case "agent":
			agentUsed++
		case "back office":
			boUsed++
		}
	}
	assert.GreaterOrEqual(t, agentUsed, 8, "the fleet dashboard and rules use the agent's metrics")
	assert.GreaterOrEqual(t, boUsed, 12, "the back-office dashboard and rules use its metrics")
	t.Logf("%d metrics used: %d of the back office, %d of the agent", len(uses), boUsed, agentUsed)

	if promtool, err := exec.LookPath("promtool"); err == nil {
		out, err := exec.Command(promtool, "check", "rules", filepath.Join("prometheus", "kpe-alerts.yml")).CombinedOutput()
		assert.NoError(t, err, "promtool check rules:\n%s", out)
	}
}

// backofficeMetricNames scrapes a running back office over PostgreSQL.
func backofficeMetricNames(t *testing.T) []string {
	st, err := backoffice.OpenPostgres(context.Background(), pgtest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	ca, err := labpki.NewCA("monitoring test SAM CA")
	require.NoError(t, err)
	sam, err := ca.NewSAM([8]byte{0x53, 0x41, 0x4d, 0, 0, 0, 0, 1})
	require.NoError(t, err)
	svc, err := backoffice.New(st, backoffice.Config{CA: ca.Pool()})
	require.NoError(t, err)
	// one record stored: the per-service counter has a series only once
	// a service has been seen
	id, err := record.NewID()
	require.NoError(t, err)
	r := &record.Record{ID: id, TerminalID: "t-01", SiteID: "pkm-a", OperatorID: "clerk-1", Service: "askes",
		CardType: record.CardKPE, CardSerial: []byte{1, 2, 3, 4}, SubjectKind: record.SubjectNIP, Subject: "196608011988031001",
		CardAuth: record.Check{Outcome: record.Pass}, IssuerSig: record.Check{Outcome: record.Pass},
		Identifiers: record.Check{Outcome: record.Pass}, Fingerprint: record.Check{Outcome: record.Pass},
		Time: time.Now(), Clock: record.ClockSynced}
	require.NoError(t, record.Seal(context.Background(), r, sam))
	enc, err := r.Encode()
	require.NoError(t, err)
	res, err := svc.Ingest(context.Background(), &wire.Batch{Certificates: [][]byte{sam.Cert}, Records: [][]byte{enc}, SentAt: time.Now()},
		backoffice.Identity{Terminal: "t-01"})
	require.NoError(t, err)
	require.Equal(t, wire.Accepted, res.Results[0].Status, res.Results[0].Reason)
	srv := httptest.NewServer(svc.StaffHandler(backoffice.StaffConfig{}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return expositionNames(string(body))
}

// expositionNames are the series names of a Prometheus text exposition.
func expositionNames(body string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// dashboardExprs checks a dashboard's structure and returns its PromQL
// expressions by panel.
func dashboardExprs(t *testing.T, path string) map[string]string {
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	require.NoError(t, dec.Decode(&d), path)
	require.NotEmpty(t, d.UID, path)
	require.NotEmpty(t, d.Title, path)
	assert.GreaterOrEqual(t, d.SchemaVersion, 36, "%s: a current Grafana schema", path)
	require.NotEmpty(t, d.Templating.List, path)
	assert.Equal(t, "datasource", d.Templating.List[0].Type, "%s: the Prometheus data source is chosen on import", path)
	out := map[string]string{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("%s panel %d %q", path, p.ID, p.Title)
			assert.False(t, ids[p.ID], "%s: panel id used twice", where)
			ids[p.ID] = true
			assert.NotEmpty(t, p.Type, where)
			assert.True(t, p.GridPos.W > 0 && p.GridPos.H > 0 && p.GridPos.X+p.GridPos.W <= 24, "%s: grid position", where)
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			require.NotNil(t, p.Datasource, where)
			assert.Equal(t, "prometheus", p.Datasource.Type, where)
			require.NotEmpty(t, p.Targets, where)
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				assert.NotEmpty(t, tg.RefID, where)
				assert.False(t, refs[tg.RefID], "%s: refId %s twice", where, tg.RefID)
				refs[tg.RefID] = true
				require.NotEmpty(t, tg.Expr, where)
				out[where+" "+tg.RefID] = tg.Expr
			}
		}
	}
	walk(d.Panels)
	require.NotEmpty(t, out, path)
	return out
}

// ruleExprs parses a rule file strictly and returns its expressions by
// alert name.
func ruleExprs(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var r rules
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&r), path)
	require.NotEmpty(t, r.Groups, path)
	out := map[string]string{}
	for _, g := range r.Groups {
		require.NotEmpty(t, g.Name, path)
		require.NotEmpty(t, g.Rules, "%s group %s", path, g.Name)
		for _, rule := range g.Rules {
			require.NotEmpty(t, rule.Alert, "%s group %s: alerting rules only", path, g.Name)
			where := path + " " + rule.Alert
			assert.NotContains(t, out, rule.Alert, "%s: alert name used twice", where)
			require.NotEmpty(t, rule.Expr, where)
			if rule.For != "" {
				_, err := promDuration(rule.For)
				assert.NoError(t, err, where)
			}
			assert.Contains(t, []string{"warning", "critical"}, rule.Labels["severity"], where)
			assert.NotEmpty(t, rule.Annotations["summary"], where)
			assert.NotEmpty(t, rule.Annotations["description"], where)
			out[rule.Alert] = rule.Expr
		}
	}
	return out
}
