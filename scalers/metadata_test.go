package scalers

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type sampleMeta struct {
	Address   string            `tidal:"name=address;host"`
	ListName  string            `tidal:"name=listName"`
	Length    int64             `tidal:"name=listLength,default=5,range=1;"`
	Activate  float64           `tidal:"name=activationListLength,default=0"`
	Password  string            `tidal:"name=password,order=authParams;triggerMetadata,optional"`
	TLS       bool              `tidal:"name=enableTLS,default=false"`
	Mode      string            `tidal:"name=mode,default=list,enum=list;stream"`
	DB        *int32            `tidal:"name=databaseIndex,optional"`
	Timeout   time.Duration     `tidal:"name=timeout,default=3s"`
	Brokers   []string          `tidal:"name=brokers,optional"`
	Headers   map[string]string `tidal:"name=headers,optional"`
	Untouched string
}

func (m *sampleMeta) Validate() error {
	if m.Mode == "stream" && m.ListName == "events" {
		return errors.New("listName: \"events\" is reserved in stream mode")
	}
	return nil
}

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		meta    map[string]string
		auth    map[string]string
		env     map[string]string
		check   func(t *testing.T, m *sampleMeta)
		wantErr []string
	}{
		{
			name: "defaults",
			meta: map[string]string{"address": "localhost:6379", "listName": "jobs"},
			check: func(t *testing.T, m *sampleMeta) {
				if m.Length != 5 || m.Activate != 0 || m.Mode != "list" || m.DB != nil || m.Timeout != 3*time.Second || m.TLS {
					t.Fatalf("defaults not applied: %+v", m)
				}
			},
		},
		{
			name: "alternate name and every kind",
			meta: map[string]string{"host": "h:1", "listName": "jobs", "listLength": "12", "activationListLength": "2.5",
				"enableTLS": "true", "databaseIndex": "3", "timeout": "7", "brokers": "a:1, b:2,", "headers": "X-A=1, X-B = two"},
			check: func(t *testing.T, m *sampleMeta) {
				if m.Address != "h:1" || m.Length != 12 || m.Activate != 2.5 || !m.TLS || m.DB == nil || *m.DB != 3 ||
					m.Timeout != 7*time.Second || strings.Join(m.Brokers, "|") != "a:1|b:2" || m.Headers["X-B"] != "two" {
					t.Fatalf("bad parse: %+v", m)
				}
			},
		},
		{
			name: "authParams win over metadata for a secret",
			meta: map[string]string{"address": "a", "listName": "l", "password": "meta-pass"},
			auth: map[string]string{"password": "auth-pass"},
			check: func(t *testing.T, m *sampleMeta) {
				if m.Password != "auth-pass" {
					t.Fatalf("password = %q", m.Password)
				}
			},
		},
		{
			name: "FromEnv",
			meta: map[string]string{"addressFromEnv": "REDIS_ADDR", "listName": "l"},
			env:  map[string]string{"REDIS_ADDR": "from-env:6379"},
			check: func(t *testing.T, m *sampleMeta) {
				if m.Address != "from-env:6379" {
					t.Fatalf("address = %q", m.Address)
				}
			},
		},
		{name: "FromEnv missing variable", meta: map[string]string{"addressFromEnv": "NOPE", "listName": "l"},
			wantErr: []string{`redis trigger "orders"`, "addressFromEnv", `"NOPE"`}},
		{name: "missing required", meta: map[string]string{"address": "a"},
			wantErr: []string{`redis trigger "orders"`, `missing required parameter "listName"`}},
		{name: "non-numeric", meta: map[string]string{"address": "a", "listName": "l", "listLength": "AA"},
			wantErr: []string{"listLength: want integer", `"AA"`}},
		{name: "below range", meta: map[string]string{"address": "a", "listName": "l", "listLength": "0"},
			wantErr: []string{"listLength: must be >= 1"}},
		{name: "negative duration", meta: map[string]string{"address": "a", "listName": "l", "timeout": "-3"},
			wantErr: []string{"timeout: want a non-negative duration"}},
		{name: "enum", meta: map[string]string{"address": "a", "listName": "l", "mode": "heap"},
			wantErr: []string{"mode: want one of list, stream", `"heap"`}},
		{name: "bad bool", meta: map[string]string{"address": "a", "listName": "l", "enableTLS": "yes please"},
			wantErr: []string{"enableTLS: want true or false"}},
		{name: "bad map", meta: map[string]string{"address": "a", "listName": "l", "headers": "novalue"},
			wantErr: []string{"headers: want key=value"}},
		{name: "every problem reported", meta: map[string]string{"listLength": "x", "mode": "y"},
			wantErr: []string{`"address"`, `"listName"`, "listLength", "mode"}},
		{name: "Validate runs last", meta: map[string]string{"address": "a", "listName": "events", "mode": "stream"},
			wantErr: []string{`listName: "events" is reserved`}},
		{name: "NaN rejected", meta: map[string]string{"address": "a", "listName": "l", "activationListLength": "NaN"},
			wantErr: []string{"activationListLength: want a finite number"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &TriggerConfig{Type: "redis", Name: "orders", Metadata: tc.meta, AuthParams: tc.auth, ResolvedEnv: tc.env}
			var m sampleMeta
			err := Parse(cfg, &m)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, &m)
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got none", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseNeverEchoesSecrets(t *testing.T) {
	type meta struct {
		Port int    `tidal:"name=port,order=authParams"`
		Mode string `tidal:"name=mode,order=authParams,enum=a;b"`
	}
	cfg := &TriggerConfig{Type: "x", AuthParams: map[string]string{"port": "s3cr3t-port", "mode": "s3cr3t-mode"}}
	err := Parse(cfg, &meta{})
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("secret leaked: %v", err)
	}
	if !strings.Contains(err.Error(), "port") || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("error does not name the fields: %v", err)
	}
}

func TestErrorfRedacts(t *testing.T) {
	cfg := &TriggerConfig{Type: "redis", Index: 2,
		AuthParams: map[string]string{"password": "hunter22"},
		Metadata:   map[string]string{"address": "redis://u:urlpass99@h:6379"}}
	err := cfg.Errorf("dial redis://u:urlpass99@h:6379 with hunter22: %w", errors.New("refused"))
	s := err.Error()
	if strings.Contains(s, "hunter22") || strings.Contains(s, "urlpass99") {
		t.Fatalf("secret leaked: %s", s)
	}
	if !strings.HasPrefix(s, "redis trigger #2: ") {
		t.Fatalf("error does not name the trigger: %s", s)
	}
	if strings.Contains(cfg.String(), "hunter22") {
		t.Fatalf("String leaked a secret: %s", cfg)
	}
}

func TestMetricName(t *testing.T) {
	cfg := &TriggerConfig{Index: 1}
	if got := cfg.MetricName("redis", "My_List"); got != "s1-redis-my-list" {
		t.Fatalf("got %q", got)
	}
}

func TestParseBadDestination(t *testing.T) {
	if err := Parse(&TriggerConfig{}, sampleMeta{}); err == nil {
		t.Fatal("want error for non-pointer destination")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("address", "a", "listLength", "5", "headers", "a=b")
	f.Add("listLength", "-1", "timeout", "1e300", "databaseIndex", "99999999999")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		cfg := &TriggerConfig{Type: "fuzz", Metadata: map[string]string{k1: v1, k2: v2}, AuthParams: map[string]string{k3: v3}}
		var m sampleMeta
		_ = Parse(cfg, &m)
	})
}

func TestRedactKeepsSwitches(t *testing.T) {
	cfg := &TriggerConfig{Type: "redis", AuthParams: map[string]string{"tls": "enable", "password": "s3cret!"}}
	got := cfg.Redact("enableTLS with s3cret!")
	if got != "enableTLS with [REDACTED]" {
		t.Fatalf("got %q", got)
	}
}

// TestFromEnvValuesAlwaysRedacted: a value resolved through "<key>FromEnv" is a secret even when it does not look
// like a URL with a password (a bare token, a connection string without a scheme).
func TestFromEnvValuesAlwaysRedacted(t *testing.T) {
	cfg := &TriggerConfig{Type: "postgresql",
		Metadata:    map[string]string{"connectionFromEnv": "PG_CONN", "passwordFromEnv": "PG_PASS"},
		ResolvedEnv: map[string]string{"PG_CONN": "host=db user=app password=s3cr3t-conn", "PG_PASS": "plainpw", "OTHER": "visible-value"}}
	err := cfg.Errorf("connect with %s / %s failed near visible-value", "host=db user=app password=s3cr3t-conn", "plainpw")
	s := err.Error()
	if strings.Contains(s, "s3cr3t-conn") || strings.Contains(s, "plainpw") {
		t.Fatalf("a FromEnv value leaked: %s", s)
	}
	if !strings.Contains(s, "visible-value") {
		t.Fatalf("an environment value no trigger reads was redacted: %s", s)
	}
	if got := cfg.Redact("token plainpw"); got != "token [REDACTED]" {
		t.Fatalf("Redact = %q", got)
	}
}
