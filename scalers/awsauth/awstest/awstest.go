// Package awstest helps the AWS scalers' tests build fakes of AWS APIs that behave like AWS at the edges the
// scalers depend on: Signature Version 4 authentication (a wrong secret key is refused as AWS refuses it) and the
// JSON and RPC v2 CBOR protocols' error shapes. Production code never imports it.
package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fxamacker/cbor/v2"
)

// Keys are the credentials a fake accepts: access key ID → secret access key.
type Keys map[string]string

// Handler is an HTTP handler that answers a request whose SigV4 signature keys refuse with the error AWS answers
// (ReadSigned), and hands any other to serve with its body.
func (k Keys) Handler(serve func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, aerr := k.ReadSigned(r)
		if aerr != nil {
			aerr.Write(w)
			return
		}
		serve(w, r, body)
	})
}

// ReadSigned reads r's body and checks its SigV4 signature against keys. It returns the body, or an error whose
// text is what AWS answers for an unknown key or a bad signature.
func (k Keys) ReadSigned(r *http.Request) ([]byte, *Error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Type: "SerializationException", Message: err.Error()}
	}
	authz := r.Header.Get("Authorization")
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(authz, alg) {
		return nil, &Error{Status: http.StatusBadRequest, Type: "MissingAuthenticationTokenException", Message: "Request is missing Authentication Token"}
	}
	fields := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(authz, alg), ",") {
		key, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[key] = val
	}
	scope := strings.Split(fields["Credential"], "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 {
		return nil, &Error{Status: http.StatusBadRequest, Type: "IncompleteSignatureException", Message: "bad Credential"}
	}
	secret, ok := k[scope[0]]
	if !ok {
		return nil, &Error{Status: http.StatusBadRequest, Type: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Type: "IncompleteSignatureException", Message: "bad X-Amz-Date"}
	}
	// Re-sign a copy that carries exactly the headers the client signed; the signatures must match.
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	re, _ := http.NewRequestWithContext(context.Background(), r.Method, u.String(), bytes.NewReader(body))
	re.Header = http.Header{}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), scope[3], scope[2], when); err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Type: "InternalFailure", Message: err.Error()}
	}
	if sig(re.Header.Get("Authorization")) != fields["Signature"] {
		return nil, &Error{Status: http.StatusForbidden, Type: "InvalidSignatureException",
			Message: "The request signature we calculated does not match the signature you provided."}
	}
	return body, nil
}

func sig(authz string) string {
	_, s, _ := strings.Cut(authz, "Signature=")
	return s
}

// Error is an AWS JSON-protocol error.
type Error struct {
	Status  int
	Type    string
	Message string
	// QueryError, when set, goes to the x-amzn-query-error header (SQS's compatibility header).
	QueryError string
}

// Write sends e the way AWS JSON 1.0/1.1 services do.
func (e *Error) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Errortype", e.Type)
	if e.QueryError != "" {
		w.Header().Set("X-Amzn-Query-Error", e.QueryError)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

// WriteCBOR sends e the way Smithy RPC v2 CBOR services (CloudWatch) do: a CBOR map with __type and message,
// and, when set, the query-compatibility header.
func (e *Error) WriteCBOR(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	if e.QueryError != "" {
		w.Header().Set("X-Amzn-Query-Error", e.QueryError)
	}
	w.WriteHeader(e.Status)
	b, _ := cbor.Marshal(map[string]string{"__type": e.Type, "message": e.Message})
	_, _ = w.Write(b)
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Message) }

// WriteJSON sends v as a JSON-protocol success response.
func WriteJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	_ = json.NewEncoder(w).Encode(v)
}
