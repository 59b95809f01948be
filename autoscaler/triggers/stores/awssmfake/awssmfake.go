// Package awssmfake is a fake of AWS Secrets Manager's GetSecretValue for tests, used through the real
// aws-sdk-go-v2 client: the AWS JSON 1.1 protocol (POST / with X-Amz-Target secretsmanager.GetSecretValue),
// Signature Version 4 checked against the fake's keys (scalers/awsauth/awstest), the service and region of the
// signing scope checked, version stages (AWSCURRENT, AWSPREVIOUS) and version ids, and AWS's error codes. It
// serves HTTPS under the region's real endpoint name (secretsmanager.<region>.amazonaws.com): HTTPClient routes
// the SDK's default endpoint to it. Production code never imports it.
package awssmfake

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidalscale/tidal/internal/testrand"

	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
)

// Server is a running fake Secrets Manager for one account and region.
type Server struct {
	// URL is the server's loopback URL, an endpoint to give the client (with HTTPClient, which trusts its CA).
	URL string
	// Region is the only region the fake answers for.
	Region string
	// AccessKeyID and SecretAccessKey are credentials the fake accepts.
	AccessKeyID, SecretAccessKey string
	// Calls counts GetSecretValue requests, authenticated or not.
	Calls atomic.Int64

	srv  *httptest.Server
	ca   *testpki.CA
	keys awstest.Keys
	sts  *awstest.STS
	// Roles are the roles of the STS credentials that read a secret, in order.
	roles []string

	mu      sync.Mutex
	secrets map[string][]version // by name, oldest first
}

type version struct {
	id      string
	value   string
	created time.Time
	stages  []string
}

// New starts a fake for region with fresh credentials; t's cleanup stops it.
func New(t testing.TB, region string) *Server {
	t.Helper()
	s := &Server{Region: region, AccessKeyID: "AKIA" + strings.ToUpper(testrand.Hex(8)), SecretAccessKey: testrand.Hex(20), secrets: map[string][]version{}}
	s.keys = awstest.Keys{s.AccessKeyID: s.SecretAccessKey}
	s.ca = testpki.NewCA(t, "awssmfake")
	pair := s.ca.Server(t, "awssmfake", "secretsmanager."+region+".amazonaws.com", "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// HTTPClient reaches the fake for every host (the SDK's default endpoint included) and trusts its CA.
func (s *Server) HTTPClient() *http.Client { return s.ca.ClientTo(s.srv.Listener.Addr().String()) }

// Close stops the server: later calls fail to connect, as when the service cannot be reached.
func (s *Server) Close() { s.srv.Close() }

// Put stores value as a new version of secret name, which becomes AWSCURRENT (the previous current one becomes
// AWSPREVIOUS), as PutSecretValue does. It returns the version id.
func (s *Server) Put(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.secrets[name]
	for i := range vs {
		vs[i].stages = without(vs[i].stages, "AWSPREVIOUS")
		if has(vs[i].stages, "AWSCURRENT") {
			vs[i].stages = append(without(vs[i].stages, "AWSCURRENT"), "AWSPREVIOUS")
		}
	}
	id := testrand.UUID()
	s.secrets[name] = append(vs, version{id: id, value: value, created: time.Now(), stages: []string{"AWSCURRENT"}})
	return id
}

func (s *Server) arn(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:123456789012:secret:%s-AbCdEf", s.Region, name)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		(&awstest.Error{Status: http.StatusNotFound, Type: "UnknownOperationException", Message: "Unknown operation"}).Write(w)
		return
	}
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		(&awstest.Error{Status: http.StatusBadRequest, Type: "UnknownOperationException", Message: "Unknown operation " + r.Header.Get("X-Amz-Target")}).Write(w)
		return
	}
	s.Calls.Add(1)
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		(&awstest.Error{Status: http.StatusBadRequest, Type: "SerializationException", Message: "unexpected content type " + ct}).Write(w)
		return
	}
	body, aerr := s.readSigned(r)
	if aerr != nil {
		aerr.Write(w)
		return
	}
	if e := s.checkScope(r); e != nil {
		e.Write(w)
		return
	}
	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string `json:"VersionStage"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.SecretID == "" {
		(&awstest.Error{Status: http.StatusBadRequest, Type: "ValidationException", Message: "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"}).Write(w)
		return
	}
	name, v, e := s.find(in.SecretID, in.VersionID, in.VersionStage)
	if e != nil {
		e.Write(w)
		return
	}
	awstest.WriteJSON(w, "application/x-amz-json-1.1", map[string]any{
		"ARN": s.arn(name), "Name": name, "VersionId": v.id, "SecretString": v.value,
		"VersionStages": v.stages, "CreatedDate": float64(v.created.UnixMilli()) / 1000,
	})
}

// TrustSTS makes the fake also accept the temporary credentials sts issues (with their session token), as
// Secrets Manager accepts an assumed role's.
func (s *Server) TrustSTS(sts *awstest.STS) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sts = sts
}

// Roles returns the role of each GetSecretValue call signed with credentials from the trusted STS.
func (s *Server) Roles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.roles...)
}

// readSigned checks r's signature against the fake's keys, or against the trusted STS's credentials when r's
// access key is not one of the fake's.
func (s *Server) readSigned(r *http.Request) ([]byte, *awstest.Error) {
	s.mu.Lock()
	sts := s.sts
	s.mu.Unlock()
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	akid, _, _ := strings.Cut(cred, "/")
	if _, ok := s.keys[akid]; ok || sts == nil {
		return s.keys.ReadSigned(r)
	}
	body, role, aerr := sts.Signed(r)
	if aerr == nil {
		s.mu.Lock()
		s.roles = append(s.roles, role)
		s.mu.Unlock()
	}
	return body, aerr
}

// checkScope refuses a signature scoped to another service or region, as AWS does.
func (s *Server) checkScope(r *http.Request) *awstest.Error {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(cred, "/")
	if len(scope) != 5 {
		return &awstest.Error{Status: http.StatusBadRequest, Type: "IncompleteSignatureException", Message: "bad Credential"}
	}
	if scope[3] != "secretsmanager" {
		return &awstest.Error{Status: http.StatusBadRequest, Type: "InvalidSignatureException", Message: "Credential should be scoped to correct service: 'secretsmanager'."}
	}
	if scope[2] != s.Region {
		return &awstest.Error{Status: http.StatusBadRequest, Type: "InvalidSignatureException",
			Message: fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", scope[2])}
	}
	return nil
}

// find resolves a name or ARN and a version id and/or stage (AWSCURRENT when neither) to a version.
func (s *Server) find(id, versionID, stage string) (string, version, *awstest.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := id
	if strings.HasPrefix(id, "arn:") {
		for n := range s.secrets {
			if s.arn(n) == id {
				name = n
			}
		}
	}
	vs, ok := s.secrets[name]
	if !ok {
		return "", version{}, &awstest.Error{Status: http.StatusBadRequest, Type: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."}
	}
	if versionID == "" && stage == "" {
		stage = "AWSCURRENT"
	}
	for _, v := range vs {
		if (versionID == "" || v.id == versionID) && (stage == "" || has(v.stages, stage)) {
			return name, v, nil
		}
	}
	if versionID != "" && stage != "" {
		return "", version{}, &awstest.Error{Status: http.StatusBadRequest, Type: "InvalidRequestException",
			Message: "You provided a VersionStage that is not associated to the provided VersionId."}
	}
	what := "staging label: " + stage
	if versionID != "" {
		what = "VersionId: " + versionID
	}
	return "", version{}, &awstest.Error{Status: http.StatusBadRequest, Type: "ResourceNotFoundException",
		Message: "Secrets Manager can't find the specified secret value for " + what}
}

func has(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func without(list []string, v string) []string {
	var out []string
	for _, s := range list {
		if s != v {
			out = append(out, s)
		}
	}
	return out
}
