package main

import (
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/planflag/planflag/matcher"
)

func TestMeanCI95(t *testing.T) {
	for _, tc := range []struct {
		xs         []float64
		mean, half float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 3, 2.776 * math.Sqrt(2.5/5)},           // t with 4 degrees of freedom
		{[]float64{0.5, 0.5}, 0.5, 0},                                     // no spread
		{[]float64{0.49}, 0.49, 0},                                        // one round: no interval
		{alternating(40), 0.5, 1.96 * math.Sqrt(40*0.25/39/40)},           // beyond the table: the normal quantile
		{[]float64{0.4, 0.6, 0.4, 0.6}, 0.5, 3.182 * math.Sqrt(0.04/3/4)}, // 3 degrees of freedom
	} {
		mean, half := meanCI95(tc.xs)
		if math.Abs(mean-tc.mean) > 1e-12 || math.Abs(half-tc.half) > 1e-9 {
			t.Errorf("%v: %v ± %v, want %v ± %v", tc.xs, mean, half, tc.mean, tc.half)
		}
	}
}

// alternating is n values, 0 and 1 by turns.
func alternating(n int) []float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i % 2)
	}
	return xs
}

func TestScrapeCounter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go fasthttp.Serve(ln, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/metrics" {
			ctx.SetStatusCode(404)
			return
		}
		ctx.SetBodyString("# HELP planflag_audit_lost_total Audit events lost.\n# TYPE planflag_audit_lost_total counter\n" +
			"planflag_audit_lost_total{reason=\"queue_full\"} 3\nplanflag_audit_lost_total{reason=\"write_error\"} 2\n" +
			"planflag_audit_lost_totals 100\nplanflag_lookups_total{tier=\"match\"} 7\n")
	})
	base := "http://" + ln.Addr().String()
	got, err := scrapeCounter(base+"/metrics", "planflag_audit_lost_total")
	if err != nil || got != 5 {
		t.Errorf("scrapeCounter = %v, %v; want 5 (the two labelled samples, not a longer name's)", got, err)
	}
	if got, err := scrapeCounter(base+"/metrics", "planflag_absent_total"); err != nil || got != 0 {
		t.Errorf("an absent counter: %v, %v; want 0", got, err)
	}
	if _, err := scrapeCounter(base+"/nowhere", "planflag_audit_lost_total"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a 404: err %v, want one naming the status", err)
	}
}

// A -withdraw share outside 0..1 is refused with an error naming it, not a
// panic (1 and above: no live plan to make a plan holder's query from) or a
// data set silently without withdrawals (below 0).
func TestGenWithdrawOutOfRange(t *testing.T) {
	for _, w := range []string{"2", "1", "-0.5"} {
		var out, errs strings.Builder
		err := run([]string{"gen", "-plans", "10", "-queries", "10", "-withdraw", w, "-out", t.TempDir()}, &out, &errs)
		if err == nil || !strings.Contains(err.Error(), "withdraw") {
			t.Errorf("-withdraw %s: error %v, want one naming -withdraw", w, err)
		}
	}
}

// estimate on FEBRL (no synthetic plan holders: the plans come from its
// records) draws its non-matching pairs from the index's live plans and
// writes weights that parse; it used to panic on an empty draw.
func TestEstimateFEBRL(t *testing.T) {
	out := filepath.Join(t.TempDir(), "w.json")
	var stdout, stderr strings.Builder
	if err := run([]string{"estimate", "-febrl", "../../testdata/febrl", "-random", "5", "-out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("estimate: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := matcher.ParseWeights(b); err != nil {
		t.Errorf("estimated weights do not parse: %v", err)
	}
}

// A run that could measure nothing is refused with the flag named, before
// any index is built, rather than reported as zeros.
func TestMeaninglessRunsRefused(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"load -workers 0", "-workers"},
		{"load -conns 0", "-conns"},
		{"load -rate 0", "-rate"},
		{"load -duration 0s", "-duration"},
		{"load -rounds 0", "-rounds"},
		{"load -round-warmup -1s", "-round-warmup"},
		{"load -plans 0", "-plans"},
		{"accuracy -queries 0", "-queries"},
		{"estimate -random 0", "-random"},
		{"estimate -queries 0", "-queries"},
		{"soak -plans 10", "-plans"},
		{"soak -duration 50s -sample 30s", "-duration"},
		{"soak -sample 0s", "-sample"},
		{"soak -churn 0", "-churn"},
		{"soak -lookups 0", "-lookups"},
		{"soak -probes 0", "-probes"},
		{"soak -probes 7", "-probes"},
		{"soak -snapshot.interval 0s", "-snapshot.interval"},
		{"soak -brokers= -redis=127.0.0.1:1", "-brokers"},
		{"soak -brokers=127.0.0.1:1 -redis=", "-redis"},
		{"soak now", "unexpected argument"},
	} {
		var stdout, stderr strings.Builder
		err := run(strings.Fields(c.args), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}
