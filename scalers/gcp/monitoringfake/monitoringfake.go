// Package monitoringfake is a fake of Cloud Monitoring's MetricService for the GCP scalers' tests, used through
// the real cloud.google.com/go/monitoring client: gRPC over TLS with a throwaway CA, the caller's self-signed
// service-account JWT verified as Monitoring would (another key is Unauthenticated), and requests for another
// project refused with PermissionDenied. What ListTimeSeries answers is the test's. Production code never
// imports it.
package monitoringfake

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidalscale/tidal/scalers/scalertest"
)

// ListTimeSeriesFunc answers a ListTimeSeries request that passed authentication and the project check.
type ListTimeSeriesFunc func(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error)

// Server is a running fake MetricService.
type Server struct {
	// Project is the only project the credentials may read.
	Project string
	// Credentials is a service-account key document for Project that the server accepts.
	Credentials string
	// Addr is the server's host:port on loopback.
	Addr string
	// Calls counts ListTimeSeries requests, authenticated or not.
	Calls atomic.Int64
	// AccessToken, when set, also accepts a bearer it reports valid: an OAuth 2 access token issued by a fake
	// token service (workload identity federation). Set it before the first call.
	AccessToken func(token string) bool

	pki  scalertest.PKI
	grpc *grpc.Server
}

type service struct {
	monitoringpb.UnimplementedMetricServiceServer
	s    *Server
	key  *rsa.PublicKey
	list ListTimeSeriesFunc
}

// New starts a fake for project whose ListTimeSeries calls list; t's cleanup stops it and fails t if a client
// ever asked the credentials' token endpoint (gRPC clients sign their own JWTs).
func New(t testing.TB, project string, list ListTimeSeriesFunc) *Server {
	t.Helper()
	var tokenHits atomic.Int64
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tokenHits.Add(1)
		http.Error(w, "no token exchange here", http.StatusBadRequest)
	}))
	t.Cleanup(tokenSrv.Close)
	s := &Server{Project: project, pki: scalertest.NewPKI(t)}
	var key *rsa.PublicKey
	s.Credentials, key = ServiceAccount(t, project, tokenSrv.URL)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = lis.Addr().String()
	s.grpc = grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{s.pki.Server}})))
	monitoringpb.RegisterMetricServiceServer(s.grpc, &service{s: s, key: key, list: list})
	go func() { _ = s.grpc.Serve(lis) }()
	t.Cleanup(s.grpc.Stop)
	t.Cleanup(func() {
		if n := tokenHits.Load(); n > 0 {
			t.Errorf("the client called the token endpoint %d times; it should sign its own JWT", n)
		}
	})
	return s
}

// ClientOptions point a Monitoring client at the fake, trusting its CA. Add the credentials option yourself.
func (s *Server) ClientOptions() []option.ClientOption {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(s.pki.CA))
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool}))),
	}
}

// Stop stops the server at once: later calls fail to connect.
func (s *Server) Stop() { s.grpc.Stop() }

func (f *service) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	f.s.Calls.Add(1)
	if !f.acceptsAccessToken(ctx) {
		if err := VerifyJWT(ctx, f.key); err != nil {
			return nil, err
		}
	}
	if req.GetName() != "projects/"+f.s.Project {
		return nil, status.Errorf(codes.PermissionDenied, "Permission monitoring.timeSeries.list denied (or the resource may not exist): %s", req.GetName())
	}
	if req.GetInterval().GetEndTime() == nil {
		return nil, status.Error(codes.InvalidArgument, "Field interval.endTime had an invalid value: must be set")
	}
	return f.list(ctx, req)
}

// acceptsAccessToken reports whether the call's bearer is an access token the server's AccessToken hook accepts
// (credentials a token exchange issued rather than a self-signed JWT).
func (f *service) acceptsAccessToken(ctx context.Context) bool {
	if f.s.AccessToken == nil {
		return false
	}
	md, _ := grpcmd.FromIncomingContext(ctx)
	authz := md.Get("authorization")
	return len(authz) == 1 && strings.HasPrefix(authz[0], "Bearer ") && f.s.AccessToken(strings.TrimPrefix(authz[0], "Bearer "))
}

// VerifyJWT checks a gRPC call's bearer token as Google APIs do for a service account's self-signed JWT: an
// RS256 JWT signed by key, else Unauthenticated. Other fakes of Google gRPC APIs share it.
func VerifyJWT(ctx context.Context, key *rsa.PublicKey) error {
	md, _ := grpcmd.FromIncomingContext(ctx)
	authz := md.Get("authorization")
	if len(authz) != 1 || !strings.HasPrefix(authz[0], "Bearer ") {
		return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials.")
	}
	parts := strings.Split(strings.TrimPrefix(authz[0], "Bearer "), ".")
	if len(parts) != 3 {
		return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig) != nil {
		return status.Error(codes.Unauthenticated, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
	}
	return nil
}

// ServiceAccount returns a service-account key document for project with a fresh RSA key, and its public key;
// tokenURI should be a server the client must never need.
func ServiceAccount(t testing.TB, project, tokenURI string) (string, *rsa.PublicKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "scaler@" + project + ".iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(doc), &k.PublicKey
}

// PrivateKeyLine returns one line of the key document's PEM private key: a string that must never appear in an
// error or a log line.
func PrivateKeyLine(t testing.TB, doc string) string {
	t.Helper()
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(doc), &key); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(key.PrivateKey, "\n")
	if len(lines) < 2 {
		t.Fatal("PrivateKeyLine: no PEM body")
	}
	return lines[1]
}
