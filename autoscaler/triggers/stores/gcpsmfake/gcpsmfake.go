// Package gcpsmfake is a fake of Google Secret Manager's AccessSecretVersion for tests, used through the real
// cloud.google.com/go/secretmanager client: gRPC over TLS with a throwaway CA, the caller's self-signed
// service-account JWT verified as Google APIs do (another key is Unauthenticated), another project refused with
// PermissionDenied, versions by number or "latest", NotFound for unknown secrets and versions, and payloads with
// their CRC32C. Its certificate also names the service's real host, secretmanager.googleapis.com: HTTPClient's
// dialer and CA bring a client on its default endpoint to the fake. Production code never imports it.
package gcpsmfake

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tidalscale/tidal/internal/testpki"
	"github.com/tidalscale/tidal/scalers/gcp/monitoringfake"
)

// projectNumber is what the fake's resource names carry, as Secret Manager answers with project numbers.
const projectNumber = "123456789012"

// Server is a running fake Secret Manager for one project.
type Server struct {
	// Project is the only project the credentials may read.
	Project string
	// Credentials is a service-account key document for Project that the server accepts.
	Credentials string
	// Addr is the server's host:port on loopback.
	Addr string
	// Calls counts AccessSecretVersion requests, authenticated or not.
	Calls atomic.Int64
	// AccessToken, when set, also accepts a bearer it reports valid: an OAuth 2 access token issued by a fake
	// token service (workload identity federation), beside the key's self-signed JWTs.
	AccessToken func(token string) bool

	ca   *testpki.CA
	grpc *grpc.Server

	mu      sync.Mutex
	secrets map[string][][]byte // id → payloads of versions 1..n
	corrupt atomic.Bool
}

type service struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s   *Server
	key *rsa.PublicKey
}

// New starts a fake for project; t's cleanup stops it.
func New(t testing.TB, project string) *Server {
	t.Helper()
	s := &Server{Project: project, ca: testpki.NewCA(t, "gcpsmfake"), secrets: map[string][][]byte{}}
	pair := s.ca.Server(t, "gcpsmfake", "secretmanager.googleapis.com", "127.0.0.1", "localhost")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	var key *rsa.PublicKey
	// gRPC clients sign their own JWTs: the token endpoint is never needed.
	s.Credentials, key = monitoringfake.ServiceAccount(t, project, "http://127.0.0.1:1/token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = lis.Addr().String()
	s.grpc = grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	secretmanagerpb.RegisterSecretManagerServiceServer(s.grpc, &service{s: s, key: key})
	go func() { _ = s.grpc.Serve(lis) }()
	t.Cleanup(s.grpc.Stop)
	return s
}

// ClientOptions point a Secret Manager client at the fake, trusting its CA. Add the credentials option yourself.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: s.ca.Pool()}))),
	}
}

// HTTPClient's transport dials the fake for every host and trusts its CA; the store builds its gRPC connection
// from those (see stores.Deps.HTTPClient).
func (s *Server) HTTPClient() *http.Client { return s.ca.ClientTo(s.Addr) }

// Stop stops the server at once: later calls fail with Unavailable.
func (s *Server) Stop() { s.grpc.Stop() }

// acceptsAccessToken reports whether the call's bearer is a token the AccessToken hook accepts.
func (f *service) acceptsAccessToken(ctx context.Context) bool {
	if f.s.AccessToken == nil {
		return false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	authz := md.Get("authorization")
	return len(authz) == 1 && strings.HasPrefix(authz[0], "Bearer ") && f.s.AccessToken(strings.TrimPrefix(authz[0], "Bearer "))
}

// Add stores payload as the next version of secret id (creating it) and returns the version number, as
// AddSecretVersion does.
func (s *Server) Add(id, payload string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[id] = append(s.secrets[id], []byte(payload))
	return len(s.secrets[id])
}

// Corrupt makes later answers carry a wrong CRC32C, as a payload damaged in transit would.
func (s *Server) Corrupt(on bool) { s.corrupt.Store(on) }

func (f *service) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	f.s.Calls.Add(1)
	if !f.acceptsAccessToken(ctx) {
		if err := monitoringfake.VerifyJWT(ctx, f.key); err != nil {
			return nil, err
		}
	}
	// projects/{project}/secrets/{secret}/versions/{version}
	p := strings.Split(req.GetName(), "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "secrets" || p[4] != "versions" || p[3] == "" || p[5] == "" {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid resource field value in the request: %s", req.GetName())
	}
	if p[1] != f.s.Project && p[1] != projectNumber {
		return nil, status.Errorf(codes.PermissionDenied, "Permission 'secretmanager.versions.access' denied for resource '%s' (or it may not exist).", req.GetName())
	}
	f.s.mu.Lock()
	versions, ok := f.s.secrets[p[3]]
	f.s.mu.Unlock()
	if !ok || len(versions) == 0 {
		return nil, status.Errorf(codes.NotFound, "Secret [projects/%s/secrets/%s] not found or has no versions.", projectNumber, p[3])
	}
	n := len(versions)
	if p[5] != "latest" {
		v, err := strconv.Atoi(p[5])
		if err != nil || v < 1 || v > len(versions) {
			return nil, status.Errorf(codes.NotFound, "Secret Version [projects/%s/secrets/%s/versions/%s] not found.", projectNumber, p[3], p[5])
		}
		n = v
	}
	data := versions[n-1]
	sum := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	if f.s.corrupt.Load() {
		sum++
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    fmt.Sprintf("projects/%s/secrets/%s/versions/%d", projectNumber, p[3], n),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	}, nil
}
