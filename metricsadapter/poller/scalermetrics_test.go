package poller

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// series is one scraped sample of the text exposition format.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape GETs url and parses the text format (enough of it for label values without commas or quotes).
func scrape(t *testing.T, url string) []series {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []series
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		head, val, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("unparsable line %q", line)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		s := series{labels: map[string]string{}, value: v}
		name, rest, hasLabels := strings.Cut(head, "{")
		s.name = name
		if hasLabels {
			for _, pair := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
				k, v, _ := strings.Cut(pair, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out
}

// find returns the series of name whose labels include want.
func find(all []series, name string, want map[string]string) []series {
	var out []series
	for _, s := range all {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

// The per-trigger series (KEDA's keda_scaler_*) appear on the registry's /metrics with the sampled value,
// activity and error count of each trigger, and disappear with the trigger or the object.
func TestScalerMetricsScraped(t *testing.T) {
	src := newSource()
	src.value.Store(7)
	src.activation = 5
	h := start(t, src, Options{})
	srv := httptest.NewServer(promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/metrics"
	ctx := context.Background()

	s := spec("orders", 1, time.Minute, "test", "a", "b")
	s.Triggers[1].Name = "" // unnamed: called s1-test, as in status
	mustUpsert(t, h.p, s)
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	obj := map[string]string{"namespace": "ns", "kind": "ScaledObject", "scaledObject": "orders", "type": "test"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range obj {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	all := scrape(t, url)
	for _, tc := range []struct{ trigger, metric string }{{"a", metricName(0, "a")}, {"s1-test", metricName(1, "b")}} {
		v := find(all, "tidal_scaler_metrics_value", with("trigger", tc.trigger, "metric", tc.metric))
		if len(v) != 1 || v[0].value != 7 {
			t.Errorf("tidal_scaler_metrics_value of %s = %+v, want one series of 7", tc.trigger, v)
		}
		a := find(all, "tidal_scaler_active", with("trigger", tc.trigger))
		if len(a) != 1 || a[0].value != 1 {
			t.Errorf("tidal_scaler_active of %s = %+v, want 1", tc.trigger, a)
		}
	}

	src.value.Store(3)
	if err := h.p.SampleNow(ctx, s.Key); err != nil {
		t.Fatal(err)
	}
	src.fail.Store(true)
	for range 2 {
		if err := h.p.SampleNow(ctx, s.Key); err == nil {
			t.Fatal("SampleNow of a failing source returned nil")
		}
	}
	all = scrape(t, url)
	if v := find(all, "tidal_scaler_metrics_value", with("trigger", "a")); len(v) != 1 || v[0].value != 3 {
		t.Errorf("value after failures = %+v, want the last good sample, 3", v)
	}
	if a := find(all, "tidal_scaler_active", with("trigger", "a")); len(a) != 1 || a[0].value != 0 {
		t.Errorf("active = %+v, want 0 (3 is below the activation threshold 5)", a)
	}
	if e := find(all, "tidal_scaler_errors_total", with("trigger", "a")); len(e) != 1 || e[0].value != 2 {
		t.Errorf("errors = %+v, want 2", e)
	}
	if strings.Contains(scrapeBody(t, url), "hunter2-secret") {
		t.Error("a credential reached /metrics")
	}

	// A new generation without the unnamed trigger drops its series and keeps trigger a's.
	src.fail.Store(false)
	mustUpsert(t, h.p, spec("orders", 2, time.Minute, "test", "a"))
	all = scrape(t, url)
	if v := find(all, "tidal_scaler_active", with("trigger", "s1-test")); len(v) != 0 {
		t.Errorf("removed trigger still reported: %+v", v)
	}
	if v := find(all, "tidal_scaler_errors_total", with("trigger", "a")); len(v) != 1 {
		t.Errorf("kept trigger's series gone: %+v", v)
	}

	h.p.Delete(ctx, s.Key)
	all = scrape(t, url)
	for _, name := range []string{"tidal_scaler_metrics_value", "tidal_scaler_active", "tidal_scaler_errors_total"} {
		if v := find(all, name, obj); len(v) != 0 {
			t.Errorf("%s of a deleted object still reported: %+v", name, v)
		}
	}
}

func scrapeBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
