package installer_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promqlWords are PromQL's keywords and operators spelt as words, and
// the literals; functions and aggregations are followed by "(" and are
// told apart by that.
var promqlWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
	"and", "or", "unless", "atan2", "inf", "nan", "start", "end"}

// labelLists are the words whose parenthesis holds label names.
var labelLists = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// promqlMetrics lists the metric names a PromQL expression uses: every
// identifier outside label matchers ({…}), ranges ([…]), strings and
// label lists (by (…), on (…), …) that is not followed by "(" (a
// function or aggregation) and is not a keyword. A metric named only in
// a matcher ({__name__="x"}) is not seen: the files do not do that. An
// expression whose brackets or quotes do not balance is an error.
func promqlMetrics(t *testing.T, expr string) []string {
	t.Helper()
	out, err := scanPromQL(expr)
	require.NoError(t, err, expr)
	return out
}

func scanPromQL(expr string) ([]string, error) {
	var out []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	parens := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{' || c == '[':
			j, err := skipGroup(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unopened %q at %d", c, i)
		case c == '(':
			parens++
			i++
		case c == ')':
			if parens--; parens < 0 {
				return nil, fmt.Errorf("unopened ) at %d", i)
			}
			i++
		case c >= '0' && c <= '9' || c == '.':
			// a number or a duration (3, 0.99, 1e3, 5m): no metric
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case c == '$':
			return nil, fmt.Errorf("a template variable outside a range at %d", i)
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			next := byte(0)
			if k < len(expr) {
				next = expr[k]
			}
			switch {
			case slices.Contains(labelLists, word):
				if next == '(' {
					e, err := skipGroup(expr, k)
					if err != nil {
						return nil, err
					}
					j = e
				}
			case slices.Contains(promqlWords, word):
			case next == '(': // a function or an aggregation
			case aggregationModifier(expr[k:]): // sum by (…) (…)
			default:
				if !slices.Contains(out, word) {
					out = append(out, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	if parens != 0 {
		return nil, fmt.Errorf("%d unclosed (", parens)
	}
	return out, nil
}

// aggregationModifier says whether rest starts with by or without and
// their label list: what follows an aggregation written "sum by (x) (…)".
func aggregationModifier(rest string) bool {
	for _, w := range []string{"by", "without"} {
		if after, ok := strings.CutPrefix(rest, w); ok && strings.HasPrefix(strings.TrimLeft(after, " \t\n"), "(") {
			return true
		}
	}
	return false
}

// skipString returns the index after the string starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at %d", i)
}

// skipGroup returns the index after the bracket group starting at i
// ({…}, […] or (…)), strings inside included.
func skipGroup(s string, i int) (int, error) {
	open := s[i]
	closer := map[byte]byte{'{': '}', '[': ']', '(': ')'}[open]
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			e, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = e - 1
		case c == closer:
			return j + 1, nil
		case c == '{' || c == '[' || c == '(':
			return 0, fmt.Errorf("%q inside %q at %d", c, open, j)
		}
	}
	return 0, fmt.Errorf("unclosed %q at %d", open, i)
}

var durationRE = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

// promDuration parses a Prometheus duration (1h, 1d12h, 30s).
func promDuration(s string) (time.Duration, error) {
	m := durationRE.FindStringSubmatch(s)
	if s == "" || m == nil {
		return 0, fmt.Errorf("%q is not a Prometheus duration", s)
	}
	units := []time.Duration{365 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute, time.Second, time.Millisecond}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, fmt.Errorf("%q: %v", s, err)
			}
			d += time.Duration(n) * u
		}
	}
	return d, nil
}

// The tokenizer on the shapes the files use, and on broken input.
func TestPromQLMetrics(t *testing.T) {
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job="x", le=~"1|2"}[$__rate_interval])))`: {"a_seconds_bucket"},
		`count(kpe_x > 3 * 86400) or vector(0)`:                       {"kpe_x"},
		`max by (kind) (delta(alarms{kind=~"a|b"}[1h])) > 0`:          {"alarms"},
		`rate(e{r="error"}[30m]) > 0 unless rate(e{r="ok"}[30m]) > 0`: {"e"},
		`a / on (instance) group_left (version) b offset 5m`:          {"a", "b"},
		`sum without (instance)(c)+d`:                                 {"c", "d"},
		`up{job="kpe-agent"} == 0`:                                    {"up"},
		`x{a="}{[("}`:                                                 {"x"},
		`topk(10, f - g)`:                                             {"f", "g"},
	} {
		got, err := scanPromQL(expr)
		require.NoError(t, err, expr)
		assert.ElementsMatch(t, want, got, expr)
	}
	for _, bad := range []string{`rate(x[5m]`, `x{a="b"`, `x]`, `sum(x))`, `x{a="b}`, `x{a=[1]}`, `$v`} {
		_, err := scanPromQL(bad)
		assert.Error(t, err, bad)
	}
	for s, want := range map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "1d12h": 36 * time.Hour, "30s": 30 * time.Second} {
		d, err := promDuration(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, d, s)
	}
	for _, bad := range []string{"", "1 h", "h", "1.5h", "10x"} {
		_, err := promDuration(bad)
		assert.Error(t, err, bad)
	}
}
