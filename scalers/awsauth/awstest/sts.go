package awstest

import (
	"encoding/xml"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidalscale/tidal/internal/testrand"
)

// STS fakes AWS STS's AssumeRoleWithWebIdentity as the query protocol has it (a form-encoded POST with
// Action, Version, RoleArn, RoleSessionName and WebIdentityToken; an XML AssumeRoleWithWebIdentityResponse, or
// an XML ErrorResponse). Verify stands for the identity provider and the role's trust policy. The temporary
// credentials it issues are what Signed accepts, session token included.
type STS struct {
	// Verify checks the web identity token presented for roleArn and returns the token's subject; an error
	// with Code AccessDenied or InvalidIdentityToken is answered as STS answers it.
	Verify func(roleArn, token string) (subject string, err *QueryError)

	mu     sync.Mutex
	issued map[string]issuedKey
	calls  int
}

type issuedKey struct{ secret, session, role string }

// QueryError is an AWS query-protocol error.
type QueryError struct {
	Status  int
	Code    string
	Message string
}

func (e *QueryError) Error() string { return e.Code + ": " + e.Message }

// Calls is the number of AssumeRoleWithWebIdentity requests answered with credentials.
func (s *STS) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *STS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		s.writeError(w, &QueryError{Status: 400, Code: "InvalidAction", Message: "want a form POST"})
		return
	}
	f := r.PostForm
	if f.Get("Action") != "AssumeRoleWithWebIdentity" || f.Get("Version") != "2011-06-15" {
		s.writeError(w, &QueryError{Status: 400, Code: "InvalidAction", Message: "Could not find operation " + f.Get("Action") + " for version " + f.Get("Version")})
		return
	}
	role, session, token := f.Get("RoleArn"), f.Get("RoleSessionName"), f.Get("WebIdentityToken")
	if role == "" || session == "" || token == "" {
		s.writeError(w, &QueryError{Status: 400, Code: "MissingParameter", Message: "RoleArn, RoleSessionName and WebIdentityToken are required"})
		return
	}
	if r.Header.Get("Authorization") != "" {
		s.writeError(w, &QueryError{Status: 400, Code: "InvalidRequest", Message: "AssumeRoleWithWebIdentity is not signed"})
		return
	}
	subject, qerr := s.Verify(role, token)
	if qerr != nil {
		s.writeError(w, qerr)
		return
	}
	akid, secret, sess := "ASIA"+testrand.Hex(8), testrand.Hex(20), testrand.Hex(32)
	s.mu.Lock()
	if s.issued == nil {
		s.issued = map[string]issuedKey{}
	}
	s.issued[akid] = issuedKey{secret: secret, session: sess, role: role}
	s.calls++
	s.mu.Unlock()
	type creds struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}
	type result struct {
		Credentials                 creds
		SubjectFromWebIdentityToken string
		AssumedRoleUser             struct{ Arn, AssumedRoleId string }
		Audience                    string
	}
	resp := struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
		Result  result   `xml:"AssumeRoleWithWebIdentityResult"`
		Meta    struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}{}
	resp.Result.Credentials = creds{akid, secret, sess, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	resp.Result.SubjectFromWebIdentityToken = subject
	resp.Result.AssumedRoleUser.Arn = role + "/" + session
	resp.Result.AssumedRoleUser.AssumedRoleId = "AROA" + testrand.Hex(8) + ":" + session
	resp.Result.Audience = "sts.amazonaws.com"
	resp.Meta.RequestID = testrand.Hex(16)
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(resp)
}

func (s *STS) writeError(w http.ResponseWriter, e *QueryError) {
	type errBody struct {
		Type, Code, Message string
	}
	body := struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error     errBody
		RequestID string `xml:"RequestId"`
	}{Error: errBody{Type: "Sender", Code: e.Code, Message: e.Message}, RequestID: testrand.Hex(16)}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	_ = xml.NewEncoder(w).Encode(body)
}

// Signed checks r's SigV4 signature against the credentials this STS issued, and that r carries their session
// token, as a service does for temporary credentials. It returns r's body and the role the credentials are of.
func (s *STS) Signed(r *http.Request) ([]byte, string, *Error) {
	s.mu.Lock()
	keys, issued := Keys{}, map[string]issuedKey{}
	for id, k := range s.issued {
		keys[id], issued[id] = k.secret, k
	}
	s.mu.Unlock()
	body, aerr := keys.ReadSigned(r)
	if aerr != nil {
		return nil, "", aerr
	}
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	akid, _, _ := strings.Cut(cred, "/")
	if k := issued[akid]; k.session != "" && k.session == r.Header.Get("X-Amz-Security-Token") {
		return body, k.role, nil
	}
	return nil, "", &Error{Status: http.StatusForbidden, Type: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
}
