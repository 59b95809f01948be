package metricsapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"url": "http://svc.ns:8080/stats", "valueLocation": "a.b", "targetValue": "10"}
	base := func(changes map[string]string) map[string]string { return scalertest.With(defaults, changes) }
	tests := []struct {
		name    string
		md      map[string]string
		auth    map[string]string
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", md: base(nil), check: func(t *testing.T, m Metadata) {
			if m.Format != "json" || m.TargetValue != 10 || m.ActivationTargetValue != 0 || m.UnsafeSsl ||
				m.Method != "header" || m.timeout != defaultTimeout || len(m.modes) != 0 {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{name: "every field", md: base(map[string]string{
			"format": "prometheus", "valueLocation": `q{a="b"}`, "targetValue": "2.5", "activationTargetValue": "1",
			"unsafeSsl": "true", "timeout": "2s", "authMode": "apiKey,tls", "method": "query", "keyParamName": "k",
		}), auth: map[string]string{"apiKey": "x", "cert": "c", "key": "k"}, check: func(t *testing.T, m Metadata) {
			if m.Format != "prometheus" || m.TargetValue != 2.5 || m.ActivationTargetValue != 1 || !m.UnsafeSsl ||
				m.timeout != 2*time.Second || !m.modes["apiKey"] || !m.modes["tls"] || m.Method != "query" || m.KeyParamName != "k" ||
				m.selector == nil || m.selector.name != "q" || m.selector.labels["a"] != "b" {
				t.Errorf("fields wrong: %+v sel=%+v", m, m.selector)
			}
		}},
		{name: "bearerToken alias", md: base(map[string]string{"authMode": "bearer"}), auth: map[string]string{"bearerToken": "t"}, check: func(t *testing.T, m Metadata) {
			if m.BearerToken != "t" {
				t.Errorf("BearerToken = %q", m.BearerToken)
			}
		}},
		{name: "missing url", md: base(map[string]string{"url": "<delete>"}), wantErr: "url"},
		{name: "relative url", md: base(map[string]string{"url": "/stats"}), wantErr: "url"},
		{name: "bad url", md: base(map[string]string{"url": "http://[::1"}), wantErr: "url"},
		{name: "missing valueLocation", md: base(map[string]string{"valueLocation": "<delete>"}), wantErr: "valueLocation"},
		{name: "missing targetValue", md: base(map[string]string{"targetValue": "<delete>"}), wantErr: "targetValue"},
		{name: "non-numeric targetValue", md: base(map[string]string{"targetValue": "AA"}), wantErr: "targetValue"},
		{name: "negative targetValue", md: base(map[string]string{"targetValue": "-1"}), wantErr: "targetValue"},
		{name: "non-numeric activationTargetValue", md: base(map[string]string{"activationTargetValue": "x"}), wantErr: "activationTargetValue"},
		{name: "bad format", md: base(map[string]string{"format": "csv"}), wantErr: "format"},
		{name: "bad prometheus selector", md: base(map[string]string{"format": "prometheus", "valueLocation": `q{a=~"b"}`}), wantErr: "valueLocation"},
		{name: "bad method", md: base(map[string]string{"method": "body"}), wantErr: "method"},
		{name: "bad authMode", md: base(map[string]string{"authMode": "oauth"}), wantErr: "authMode"},
		{name: "apiKey without key", md: base(map[string]string{"authMode": "apiKey"}), wantErr: "apiKey"},
		{name: "basic without username", md: base(map[string]string{"authMode": "basic"}), wantErr: "username"},
		{name: "bearer without token", md: base(map[string]string{"authMode": "bearer"}), wantErr: "token"},
		{name: "basic and bearer", md: base(map[string]string{"authMode": "basic,bearer"}), auth: map[string]string{"username": "u", "token": "t"}, wantErr: "cannot be combined"},
		{name: "tls without cert", md: base(map[string]string{"authMode": "tls"}), auth: map[string]string{"key": "k"}, wantErr: "cert and key"},
		{name: "bad timeout", md: base(map[string]string{"timeout": "soon"}), wantErr: "timeout"},
		{name: "bad unsafeSsl", md: base(map[string]string{"unsafeSsl": "sure"}), wantErr: "unsafeSsl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: tc.md, AuthParams: tc.auth}
			var m Metadata
			err := scalers.Parse(cfg, &m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "metrics-api trigger") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to name the metrics-api trigger and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestURLWithAPIKeyNeverInParseError(t *testing.T) {
	t.Parallel()
	cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{
		"url": "ftp://user:hunter22@host/x?api_key=supersecret", "valueLocation": "v", "targetValue": "1"}}
	var m Metadata
	err := scalers.Parse(cfg, &m)
	if err == nil || strings.Contains(err.Error(), "hunter22") || strings.Contains(err.Error(), "supersecret") {
		t.Fatalf("Parse error = %v, want an error without the URL's credentials", err)
	}
}

func TestMetricSpecs(t *testing.T) {
	t.Parallel()
	s := newScaler(t, map[string]string{"url": "http://x", "valueLocation": "components.worker.tasks", "targetValue": "0.5"}, nil)
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s0-metric-api-components-worker-tasks" {
		t.Fatalf("specs = %+v", specs)
	}
	if av := specs[0].External.Target.AverageValue; av == nil || av.MilliValue() != 500 {
		t.Fatalf("target = %+v, want AverageValue 0.5", specs[0].External.Target)
	}
}

func TestExtractValue(t *testing.T) {
	t.Parallel()
	// Format edge cases without HTTP in between.
	tests := []struct {
		name, format, body, loc string
		want                    float64
		wantErr                 bool
	}{
		{name: "xml two roots", format: "xml", body: "<a>1</a><b>2</b>", loc: "a", wantErr: true},
		{name: "xml empty", format: "xml", body: "", loc: "a", wantErr: true},
		{name: "xml nested arrays", format: "xml", body: "<r><i><v>1</v></i><i><v>5</v></i></r>", loc: "r.i.1.v", want: 5},
		{name: "yaml invalid", format: "yaml", body: "a: [", loc: "a", wantErr: true},
		{name: "prometheus timestamp and CRLF", format: "prometheus", body: "# TYPE q gauge\r\nq{a=\"b\"} 3 1700000000000", loc: `q{a="b"}`, want: 3},
		{name: "prometheus NaN", format: "prometheus", body: "q NaN\n", loc: "q", wantErr: true},
		{name: "json big number", format: "json", body: `{"n": 1e300}`, loc: "n", want: 1e300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sel *selector
			if tc.format == "prometheus" {
				var err error
				if sel, err = parseSelector(tc.loc); err != nil {
					t.Fatal(err)
				}
			}
			v, err := extractValue([]byte(tc.body), tc.format, tc.loc, sel)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("extractValue = %v, want an error", v)
				}
				return
			}
			if err != nil || v != tc.want {
				t.Fatalf("extractValue = (%v, %v), want %v", v, err, tc.want)
			}
		})
	}
}

func FuzzParseMetricsAPIMetadata(f *testing.F) {
	f.Add("http://svc:8080/m", "a.b", "json", "10", "0", "apiKey", "query", "k", "1000")
	f.Add("", "", "prometheus", "x", "-1", "tls,basic", "body", "a b", "-3")
	f.Add("https://u:p@h/?q=1", `m{a="b",c="d"}`, "prometheus", "1e308", "NaN", "bearer,basic", "header", "", "1h1m")
	f.Add("http://h", "m{a=~\"x\"}\n#", "xml", "0.001", "1", ",,", "query", ":", "5s")
	f.Fuzz(func(t *testing.T, url, loc, format, target, activation, mode, method, keyParam, timeout string) {
		cfg := &scalers.TriggerConfig{Type: TriggerType, Metadata: map[string]string{
			"url": url, "valueLocation": loc, "format": format, "targetValue": target, "activationTargetValue": activation,
			"authMode": mode, "method": method, "keyParamName": keyParam, "timeout": timeout,
		}, AuthParams: map[string]string{"apiKey": "k", "username": "u", "token": "t"}}
		cfg.Normalize()
		s, err := New(context.Background(), cfg)
		if err != nil {
			if !strings.Contains(err.Error(), "metrics-api trigger") {
				t.Fatalf("error does not name the trigger: %v", err)
			}
			return
		}
		_ = s.MetricSpecs()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, _ = s.Sample(ctx)
		// The value extractors must not panic on arbitrary bodies either.
		_, _ = extractValue([]byte(url+loc), format, loc, s.(*Scaler).meta.selector)
		_ = s.Close(context.Background())
	})
}
