package metricsapi

import (
	"strings"
	"testing"
	"time"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/httpauth"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"url": "http://svc.ns:8080/stats", "valueLocation": "a.b", "targetValue": "10"}
	base := func(changes map[string]string) map[string]string { return scalertest.With(defaults, changes) }
	scalertest.ParseTable(t, TriggerType, []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: base(nil), Check: func(t *testing.T, m Metadata) {
			if m.Format != "json" || m.TargetValue != 10 || m.ActivationTargetValue != 0 || m.UnsafeSsl ||
				m.Method != "header" || m.timeout != defaultTimeout || len(m.modes) != 0 {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: base(map[string]string{
			"format": "prometheus", "valueLocation": `q{a="b"}`, "targetValue": "2.5", "activationTargetValue": "1",
			"unsafeSsl": "true", "timeout": "2s", "authMode": "apiKey,tls", "method": "query", "keyParamName": "k",
		}), Auth: map[string]string{"apiKey": "x", "cert": "c", "key": "k"}, Check: func(t *testing.T, m Metadata) {
			if m.Format != "prometheus" || m.TargetValue != 2.5 || m.ActivationTargetValue != 1 || !m.UnsafeSsl ||
				m.timeout != 2*time.Second || !m.modes["apiKey"] || !m.modes["tls"] || m.Method != "query" || m.KeyParamName != "k" ||
				m.selector == nil || m.selector.name != "q" || m.selector.labels["a"] != "b" {
				t.Errorf("fields wrong: %+v sel=%+v", m, m.selector)
			}
		}},
		{Name: "bearerToken alias", MD: base(map[string]string{"authMode": "bearer"}), Auth: map[string]string{"bearerToken": "t"}, Check: func(t *testing.T, m Metadata) {
			if m.BearerToken != "t" {
				t.Errorf("BearerToken = %q", m.BearerToken)
			}
		}},
		{Name: "missing url", MD: base(map[string]string{"url": "<delete>"}), WantErr: "url"},
		{Name: "relative url", MD: base(map[string]string{"url": "/stats"}), WantErr: "url"},
		{Name: "bad url", MD: base(map[string]string{"url": "http://[::1"}), WantErr: "url"},
		{Name: "missing valueLocation", MD: base(map[string]string{"valueLocation": "<delete>"}), WantErr: "valueLocation"},
		{Name: "missing targetValue", MD: base(map[string]string{"targetValue": "<delete>"}), WantErr: "targetValue"},
		{Name: "non-numeric targetValue", MD: base(map[string]string{"targetValue": "AA"}), WantErr: "targetValue"},
		{Name: "negative targetValue", MD: base(map[string]string{"targetValue": "-1"}), WantErr: "targetValue"},
		{Name: "non-numeric activationTargetValue", MD: base(map[string]string{"activationTargetValue": "x"}), WantErr: "activationTargetValue"},
		{Name: "bad format", MD: base(map[string]string{"format": "csv"}), WantErr: "format"},
		{Name: "bad prometheus selector", MD: base(map[string]string{"format": "prometheus", "valueLocation": `q{a=~"b"}`}), WantErr: "valueLocation"},
		{Name: "bad method", MD: base(map[string]string{"method": "body"}), WantErr: "method"},
		{Name: "bad authMode", MD: base(map[string]string{"authMode": "kerberos"}), WantErr: "authMode"},
		{Name: "oauth", MD: base(map[string]string{"authMode": "oauth"}),
			Auth: map[string]string{"oauthTokenURI": "https://idp/token", "clientID": "c", "scopes": "a"}, Check: func(t *testing.T, m Metadata) {
				if !m.modes[httpauth.ModeOAuth] || m.TokenURL != "https://idp/token" || m.ClientID != "c" || len(m.Scopes) != 1 {
					t.Errorf("oauth fields wrong: %+v", m.OAuth)
				}
			}},
		{Name: "oauth without oauthTokenURI", MD: base(map[string]string{"authMode": "oauth"}), Auth: map[string]string{"clientID": "c"}, WantErr: "oauthTokenURI: required by authMode oauth"},
		{Name: "oauth and basic", MD: base(map[string]string{"authMode": "oauth,basic"}),
			Auth: map[string]string{"username": "u", "oauthTokenURI": "https://idp/token", "clientID": "c"}, WantErr: "cannot be combined"},
		{Name: "apiKey without key", MD: base(map[string]string{"authMode": "apiKey"}), WantErr: "apiKey"},
		{Name: "basic without username", MD: base(map[string]string{"authMode": "basic"}), WantErr: "username"},
		{Name: "bearer without token", MD: base(map[string]string{"authMode": "bearer"}), WantErr: "token"},
		{Name: "basic and bearer", MD: base(map[string]string{"authMode": "basic,bearer"}), Auth: map[string]string{"username": "u", "token": "t"}, WantErr: "cannot be combined"},
		{Name: "tls without cert", MD: base(map[string]string{"authMode": "tls"}), Auth: map[string]string{"key": "k"}, WantErr: "cert and key"},
		{Name: "bad timeout", MD: base(map[string]string{"timeout": "soon"}), WantErr: "timeout"},
		{Name: "bad unsafeSsl", MD: base(map[string]string{"unsafeSsl": "sure"}), WantErr: "unsafeSsl"},
	})
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
	scalertest.ExpectMetric(t, s, "s0-metric-api-components-worker-tasks", 500)
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
		s, ok := scalertest.Poke(t, New, cfg)
		if !ok {
			return
		}
		// The value extractors must not panic on arbitrary bodies either.
		_, _ = extractValue([]byte(url+loc), format, loc, s.(*Scaler).meta.selector)
	})
}
