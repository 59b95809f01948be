package awssqs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	goaws "github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/router"
	"github.com/sirupsen/logrus"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	keyID  = "AKIDTIDALTEST"
	secret = "tidal-sqs-secret-key"
)

// server is GoAWS (github.com/Admiral-Piett/goaws) in-process: its query-protocol router keeps the queues and
// runs send, receive (visibility timeout) and delay. GoAWS v0.4.5, the newest on the module proxy, predates the
// AWS JSON protocol that aws-sdk-go-v2's SQS client speaks, so a thin JSON front-end answers GetQueueUrl and
// GetQueueAttributes from GoAWS's queue state, after checking the SigV4 signature as SQS does. Its counts follow
// AWS: visible, not visible (received, not deleted) and delayed are disjoint (GoAWS's own
// ApproximateNumberOfMessages counts every message).
type server struct {
	goaws *httptest.Server // query protocol, for the test's sends and receives
	sqs   *httptest.Server // JSON protocol, for the scaler
}

func newServer(t testing.TB) *server {
	t.Helper()
	logrus.SetLevel(logrus.WarnLevel)
	s := &server{goaws: httptest.NewServer(router.New())}
	t.Cleanup(s.goaws.Close)
	keys := awstest.Keys{keyID: secret}
	s.sqs = httptest.NewServer(keys.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		var in struct {
			QueueURL       string   `json:"QueueUrl"`
			QueueName      string   `json:"QueueName"`
			AttributeNames []string `json:"AttributeNames"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.sqs#InvalidRequest", Message: err.Error()}).Write(w)
			return
		}
		name := in.QueueName
		if in.QueueURL != "" {
			name = in.QueueURL[strings.LastIndex(in.QueueURL, "/")+1:]
		}
		goaws.SyncQueues.RLock()
		defer goaws.SyncQueues.RUnlock()
		q, ok := goaws.SyncQueues.Queues[name]
		if !ok {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.sqs#QueueDoesNotExist", Message: "The specified queue does not exist.",
				QueryError: "AWS.SimpleQueueService.NonExistentQueue;Sender"}).Write(w)
			return
		}
		const ct = "application/x-amz-json-1.0"
		switch r.Header.Get("X-Amz-Target") {
		case "AmazonSQS.GetQueueUrl":
			awstest.WriteJSON(w, ct, map[string]string{"QueueUrl": s.sqs.URL + "/000000000000/" + name})
		case "AmazonSQS.GetQueueAttributes":
			var visible, inFlight, delayed int
			now := time.Now()
			for _, m := range q.Messages {
				switch {
				case m.ReceiptHandle != "":
					inFlight++
				case m.DelaySecs > 0 && now.Before(m.SentTime.Add(time.Duration(m.DelaySecs)*time.Second)):
					delayed++
				default:
					visible++
				}
			}
			all := map[string]string{
				"ApproximateNumberOfMessages":           strconv.Itoa(visible),
				"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inFlight),
				"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
			}
			out := map[string]string{}
			for _, a := range in.AttributeNames {
				if v, ok := all[a]; ok {
					out[a] = v
				}
			}
			awstest.WriteJSON(w, ct, map[string]any{"Attributes": out})
		default:
			(&awstest.Error{Status: 400, Type: "com.amazonaws.sqs#UnsupportedOperation", Message: r.Header.Get("X-Amz-Target")}).Write(w)
		}
	}))
	t.Cleanup(s.sqs.Close)
	return s
}

// do calls one GoAWS query-protocol action and returns the response body.
func (s *server) do(t testing.TB, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(s.goaws.URL, form)
	if err != nil {
		t.Fatalf("%s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", form.Get("Action"), resp.Status, b)
	}
	return string(b)
}

func (s *server) queue(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "tidal-" + hex.EncodeToString(b)
	s.do(t, url.Values{"Action": {"CreateQueue"}, "QueueName": {name}})
	return name
}

func (s *server) send(t testing.TB, queue string, n int, delay time.Duration) {
	t.Helper()
	for i := 0; i < n; i++ {
		f := url.Values{"Action": {"SendMessage"}, "QueueUrl": {s.goaws.URL + "/queue/" + queue}, "MessageBody": {"m" + strconv.Itoa(i)}}
		if delay > 0 {
			f.Set("DelaySeconds", strconv.Itoa(int(delay.Seconds())))
		}
		s.do(t, f)
	}
}

// receive takes n messages in flight for an hour.
func (s *server) receive(t testing.TB, queue string, n int) {
	t.Helper()
	s.do(t, url.Values{"Action": {"ReceiveMessage"}, "QueueUrl": {s.goaws.URL + "/queue/" + queue},
		"MaxNumberOfMessages": {strconv.Itoa(n)}, "VisibilityTimeout": {"3600"}})
}

func (s *server) queueURL(queue string) string { return s.sqs.URL + "/000000000000/" + queue }

func trigger(srv *server, md map[string]string) *scalers.TriggerConfig {
	base := map[string]string{"awsRegion": "eu-west-1", "awsEndpoint": srv.sqs.URL}
	return &scalers.TriggerConfig{Type: Type, Index: 1, Metadata: scalertest.With(base, md),
		AuthParams: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret}}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"queueURL": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "awsRegion": "eu-west-1"}
	auth := awstest.Auth()
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(awstest.CredentialCases[Metadata](defaults), []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.QueueLength != 5 || m.ActivationQueueLength != 0 || !m.ScaleOnInFlight || m.ScaleOnDelayed ||
				m.queueName != "orders" || m.isName || m.IdentityOwner != "pod" || m.Endpoint != "" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every field", MD: scalertest.WithPairs(defaults, "queueLength", "20", "activationQueueLength", "3",
			"scaleOnInFlight", "false", "scaleOnDelayed", "true", "awsEndpoint", "http://127.0.0.1:4566"),
			Auth: scalertest.WithPairs(auth, "awsSessionToken", "tok"), Check: func(t *testing.T, m Metadata) {
				if m.QueueLength != 20 || m.ActivationQueueLength != 3 || m.ScaleOnInFlight || !m.ScaleOnDelayed ||
					m.Endpoint != "http://127.0.0.1:4566" || m.SessionToken != "tok" {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "bare queue name", MD: scalertest.WithPairs(defaults, "queueURL", "orders"), Auth: auth, Check: func(t *testing.T, m Metadata) {
			if !m.isName || m.queueName != "orders" {
				t.Errorf("name not taken: %+v", m)
			}
		}},
		{Name: "queueURLFromEnv", MD: scalertest.WithPairs(defaults, "queueURL", scalertest.Delete, "queueURLFromEnv", "Q"),
			Env: map[string]string{"Q": "https://sqs.eu-west-1.amazonaws.com/1/jobs"}, Auth: auth, Check: func(t *testing.T, m Metadata) {
				if m.queueName != "jobs" {
					t.Errorf("queueName = %q", m.queueName)
				}
			}},
		{Name: "missing queueURL", MD: scalertest.WithPairs(defaults, "queueURL", scalertest.Delete), Auth: auth, WantErr: `"queueURL"`},
		{Name: "queueURLFromEnv not set", MD: scalertest.WithPairs(defaults, "queueURL", scalertest.Delete, "queueURLFromEnv", "NOPE"), Auth: auth, WantErr: "queueURLFromEnv"},
		{Name: "queueURL without queue", MD: scalertest.WithPairs(defaults, "queueURL", "https://sqs.eu-west-1.amazonaws.com/123"), Auth: auth, WantErr: "queueURL"},
		{Name: "queueURL too deep", MD: scalertest.WithPairs(defaults, "queueURL", "https://sqs.eu-west-1.amazonaws.com/1/q/x"), Auth: auth, WantErr: "queueURL"},
		{Name: "queueURL ftp", MD: scalertest.WithPairs(defaults, "queueURL", "ftp://h/1/q"), Auth: auth, WantErr: "queueURL"},
		{Name: "queueURL garbage", MD: scalertest.WithPairs(defaults, "queueURL", "sqs: orders"), Auth: auth, WantErr: "queueURL"},
		{Name: "blank queueURL", MD: scalertest.WithPairs(defaults, "queueURL", " "), Auth: auth, WantErr: "queueURL"},
		{Name: "queueLength text", MD: scalertest.WithPairs(defaults, "queueLength", "five"), Auth: auth, WantErr: "queueLength: want integer"},
		{Name: "queueLength fraction", MD: scalertest.WithPairs(defaults, "queueLength", "2.5"), Auth: auth, WantErr: "queueLength"},
		{Name: "queueLength zero", MD: scalertest.WithPairs(defaults, "queueLength", "0"), Auth: auth, WantErr: "queueLength: must be >= 1"},
		{Name: "queueLength negative", MD: scalertest.WithPairs(defaults, "queueLength", "-3"), Auth: auth, WantErr: "queueLength"},
		{Name: "activationQueueLength text", MD: scalertest.WithPairs(defaults, "activationQueueLength", "x"), Auth: auth, WantErr: "activationQueueLength"},
		{Name: "activationQueueLength negative", MD: scalertest.WithPairs(defaults, "activationQueueLength", "-1"), Auth: auth, WantErr: "activationQueueLength"},
		{Name: "scaleOnInFlight bad", MD: scalertest.WithPairs(defaults, "scaleOnInFlight", "yes please"), Auth: auth, WantErr: "scaleOnInFlight"},
		{Name: "scaleOnDelayed bad", MD: scalertest.WithPairs(defaults, "scaleOnDelayed", "2"), Auth: auth, WantErr: "scaleOnDelayed"},
	}...), awstest.Secret)
}

func TestUtilizationRefused(t *testing.T) {
	t.Parallel()
	cfg := &scalers.TriggerConfig{Type: Type, MetricType: "Utilization", AuthParams: awstest.Auth(),
		Metadata: map[string]string{"queueURL": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders", "awsRegion": "eu-west-1"}}
	if _, err := ParseMetadata(cfg); err == nil || !strings.Contains(err.Error(), "aws-sqs-queue trigger") || !strings.Contains(err.Error(), "metricType") {
		t.Fatalf("error %v, want it to name the trigger and metricType", err)
	}
}

func TestSampleLoadAndDrain(t *testing.T) {
	srv := newServer(t)
	q := srv.queue(t)
	s := scalertest.New[scalers.Scaler](t, New, trigger(srv, map[string]string{"queueURL": srv.queueURL(q), "activationQueueLength": "2"}))
	specs := s.MetricSpecs()
	if len(specs) != 1 || specs[0].External.Metric.Name != "s1-aws-sqs-"+q || specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("specs = %+v", specs)
	}
	metric := specs[0].External.Metric.Name
	if v, active := scalertest.Sample(t, s, metric); v != 0 || active {
		t.Errorf("empty: %v active %v, want 0 false", v, active)
	}
	srv.send(t, q, 2, 0)
	if v, active := scalertest.Sample(t, s, metric); v != 2 || active {
		t.Errorf("at activation: %v active %v, want 2 false", v, active)
	}
	srv.send(t, q, 6, 0)
	if v, active := scalertest.Sample(t, s, metric); v != 8 || !active {
		t.Errorf("above target: %v active %v, want 8 true", v, active)
	}
	srv.receive(t, q, 3)
	if v, _ := scalertest.Sample(t, s, metric); v != 8 {
		t.Errorf("in flight counted (scaleOnInFlight default true): %v, want 8", v)
	}
}

func TestInFlightAndDelayed(t *testing.T) {
	srv := newServer(t)
	q := srv.queue(t)
	srv.send(t, q, 4, 0)
	srv.receive(t, q, 3)
	srv.send(t, q, 2, time.Hour/4) // SQS caps DelaySeconds at 15 minutes
	tests := []struct {
		name string
		md   map[string]string
		want float64
	}{
		{name: "defaults: visible and in flight", md: nil, want: 4},
		{name: "visible only", md: map[string]string{"scaleOnInFlight": "false"}, want: 1},
		{name: "visible and delayed", md: map[string]string{"scaleOnInFlight": "false", "scaleOnDelayed": "true"}, want: 3},
		{name: "all three", md: map[string]string{"scaleOnDelayed": "true"}, want: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := scalertest.New[scalers.Scaler](t, New, trigger(srv, scalertest.With(map[string]string{"queueURL": srv.queueURL(q)}, tc.md)))
			if v, _ := scalertest.Sample(t, s, ""); v != tc.want {
				t.Errorf("value %v, want %v", v, tc.want)
			}
		})
	}
}

func TestQueueNameResolved(t *testing.T) {
	srv := newServer(t)
	q := srv.queue(t)
	srv.send(t, q, 3, 0)
	s := scalertest.New[scalers.Scaler](t, New, trigger(srv, map[string]string{"queueURL": q}))
	if v, active := scalertest.Sample(t, s, "s1-aws-sqs-"+q); v != 3 || !active {
		t.Errorf("by name: %v %v, want 3 true", v, active)
	}
	missing := scalertest.New[scalers.Scaler](t, New, trigger(srv, map[string]string{"queueURL": "nope-" + q}))
	_, _, err := missing.Sample(context.Background())
	if err == nil || !strings.Contains(err.Error(), "queueURL") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing queue: %v", err)
	}
}

func TestAuth(t *testing.T) {
	srv := newServer(t)
	q := srv.queue(t)
	srv.send(t, q, 1, 0)
	tests := []struct {
		name    string
		auth    map[string]string
		wantErr string
	}{
		{name: "right keys", auth: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret}},
		{name: "session token is sent", auth: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret, "awsSessionToken": "session-tok"}},
		{name: "wrong secret", auth: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": "wrong-secret-value"}, wantErr: "InvalidSignatureException"},
		{name: "unknown key", auth: map[string]string{"awsAccessKeyID": "AKIDUNKNOWN", "awsSecretAccessKey": "wrong-secret-value"}, wantErr: "UnrecognizedClientException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := scalertest.ObservedLogger()
			cfg := trigger(srv, map[string]string{"queueURL": srv.queueURL(q)})
			cfg.AuthParams, cfg.Logger = tc.auth, log
			s := scalertest.New[scalers.Scaler](t, New, cfg)
			_, _, err := s.Sample(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Sample: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "aws-sqs-queue trigger #1") {
				t.Fatalf("err = %v, want %s naming the trigger", err, tc.wantErr)
			}
			scalertest.AssertNoSecret(t, tc.auth["awsSecretAccessKey"], err.Error(), logs.All())
		})
	}
}

func TestServerDown(t *testing.T) {
	srv := newServer(t)
	q := srv.queue(t)
	s := scalertest.New[scalers.Scaler](t, New, trigger(srv, map[string]string{"queueURL": srv.queueURL(q)}))
	scalertest.SourceDown(t, s, srv.sqs.Close, "GetQueueAttributes")
}

// BenchmarkSample measures one GetQueueAttributes (SigV4-signed JSON request) against in-process GoAWS.
func BenchmarkSample(b *testing.B) {
	srv := newServer(b)
	q := srv.queue(b)
	srv.send(b, q, 10, 0)
	scalertest.BenchmarkSample(b, scalertest.New[scalers.Scaler](b, New, trigger(srv, map[string]string{"queueURL": srv.queueURL(q)})))
}
