// Package acifake is an in-process stand-in for the Azure Container Instances REST API (api-version
// 2023-05-01), for tests: the real API cannot be reached from here. It speaks ACI's JSON by hand (not through
// the SDK's models): container group PUT/GET/DELETE/list with provisioningState and instance views, container
// logs, ARM error bodies, and scripted faults (429 with Retry-After, quota errors).
package acifake

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/gorilla/websocket"
)

// Fault is a scripted error response.
type Fault struct {
	Status     int
	RetryAfter string // Retry-After header value, e.g. "1"
	Code       string
	Message    string
}

// Throttle returns a 429 fault with Retry-After.
func Throttle(retryAfter string) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfter, Code: "TooManyRequests",
		Message: "The request is being throttled as the limit has been reached for operation type - Write_ContainerGroups."}
}

// Quota returns ACI's container group quota error.
func Quota(region string) Fault {
	return Fault{Status: http.StatusConflict, Code: "ContainerGroupQuotaReached", Message: fmt.Sprintf(
		"Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region '%s'. Limit: '10', Usage: '10', Requested: '1'.", region)}
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	At     time.Time
	Status int
}

// Server is a fake ACI endpoint. Use New.
type Server struct {
	srv *httptest.Server
	// StartDelay is the time from PUT to the containers running.
	StartDelay time.Duration

	mu       sync.Mutex
	execs    map[string]execSession // by websocket token
	groups   map[string]*group      // by resource group/name
	faults   map[string][]Fault
	requests []Request
}

type group struct {
	doc     map[string]any // the PUT body, with id/name/type added
	created time.Time
}

// New starts a fake ACI server (TLS: ARM bearer tokens are only sent over HTTPS). Close it when done.
func New() *Server {
	s := &Server{groups: map[string]*group{}, faults: map[string][]Fault{}, execs: map[string]execSession{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// ClientOptions point the SDK at the server, with short retry delays.
func (s *Server) ClientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: s.srv.URL + "/aad/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: "https://management.core.windows.net/", Endpoint: s.srv.URL},
			},
		},
		Transport: s.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 5 * time.Second},
	}, DisableRPRegistration: true}
}

// Credential returns a token credential the server accepts.
func (s *Server) Credential() azcore.TokenCredential { return staticToken{} }

type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "fake-aci-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// FailNextPuts queues faults answered, in order, to the next PUTs of the container group named name.
func (s *Server) FailNextPuts(name string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = append(s.faults[name], faults...)
}

// Requests returns the requests whose path contains substr, for method ("" for all).
func (s *Server) Requests(method, substr string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, substr) {
			out = append(out, r)
		}
	}
	return out
}

// Groups returns the names of existing container groups.
func (s *Server) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.groups {
		out = append(out, k[strings.Index(k, "/")+1:])
	}
	sort.Strings(out)
	return out
}

var (
	groupPath = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups/([^/]+)$`)
	listPath  = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups$`)
	execPath  = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups/([^/]+)/containers/([^/]+)/exec$`)
	logsPath  = regexp.MustCompile(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.ContainerInstance/containerGroups/([^/]+)/containers/([^/]+)/logs$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/exec-ws/") {
		s.execSocket(w, r) // the raw writer: the upgrade hijacks the connection
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, At: time.Now(), Status: rec.status})
		s.mu.Unlock()
	}()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		writeError(rec, Fault{Status: http.StatusUnauthorized, Code: "AuthenticationFailed", Message: "Authentication failed. The 'Authorization' header is missing."})
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(rec, Fault{Status: http.StatusBadRequest, Code: "MissingApiVersionParameter", Message: "The api-version query parameter (?api-version=) is required for all requests."})
		return
	}
	switch {
	case execPath.MatchString(r.URL.Path) && r.Method == http.MethodPost:
		m := execPath.FindStringSubmatch(r.URL.Path)
		s.exec(rec, r, m[2], m[3])
	case logsPath.MatchString(r.URL.Path) && r.Method == http.MethodGet:
		m := logsPath.FindStringSubmatch(r.URL.Path)
		s.logs(rec, r, m[2], m[3], m[4])
	case groupPath.MatchString(r.URL.Path):
		m := groupPath.FindStringSubmatch(r.URL.Path)
		switch r.Method {
		case http.MethodPut:
			s.put(rec, r, m[1], m[2], m[3])
		case http.MethodGet:
			s.get(rec, m[2], m[3])
		case http.MethodDelete:
			s.delete(rec, m[2], m[3])
		default:
			writeError(rec, Fault{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: r.Method})
		}
	case listPath.MatchString(r.URL.Path) && r.Method == http.MethodGet:
		m := listPath.FindStringSubmatch(r.URL.Path)
		s.list(rec, m[2])
	default:
		writeError(rec, Fault{Status: http.StatusNotFound, Code: "NotFound", Message: "no route " + r.URL.Path})
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeError(w http.ResponseWriter, f Fault) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("x-ms-error-code", f.Code)
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": f.Code, "message": f.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, sub, rg, name string) {
	s.mu.Lock()
	if q := s.faults[name]; len(q) > 0 {
		f := q[0]
		s.faults[name] = q[1:]
		s.mu.Unlock()
		writeError(w, f)
		return
	}
	s.mu.Unlock()
	var doc map[string]any
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		writeError(w, Fault{Status: http.StatusBadRequest, Code: "InvalidRequestContent", Message: err.Error()})
		return
	}
	props, _ := doc["properties"].(map[string]any)
	if props == nil || len(asSlice(props["containers"])) == 0 {
		writeError(w, Fault{Status: http.StatusBadRequest, Code: "InvalidContainerGroupProperties", Message: "The container group must have at least one container."})
		return
	}
	if doc["location"] == nil {
		writeError(w, Fault{Status: http.StatusBadRequest, Code: "LocationRequired", Message: "The location property is required for this definition."})
		return
	}
	doc["id"] = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerInstance/containerGroups/%s", sub, rg, name)
	doc["name"] = name
	doc["type"] = "Microsoft.ContainerInstance/containerGroups"
	s.mu.Lock()
	_, existed := s.groups[rg+"/"+name]
	g := &group{doc: doc, created: time.Now()}
	s.groups[rg+"/"+name] = g
	out := s.render(g, time.Now())
	s.mu.Unlock()
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// render returns the group's JSON as ACI returns it at now: Pending/Creating until StartDelay passed, then
// Running with instance views. s.mu must be held.
func (s *Server) render(g *group, now time.Time) map[string]any {
	b, _ := json.Marshal(g.doc)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	props := out["properties"].(map[string]any)
	started := now.Sub(g.created) >= s.StartDelay
	startTime := g.created.Add(s.StartDelay).UTC().Format(time.RFC3339Nano)
	if !started {
		props["provisioningState"] = "Creating"
		props["instanceView"] = map[string]any{"state": "Pending", "events": []any{}}
	} else {
		props["provisioningState"] = "Succeeded"
		props["instanceView"] = map[string]any{"state": "Running", "events": []any{
			map[string]any{"count": 1, "firstTimestamp": startTime, "lastTimestamp": startTime, "name": "Started", "message": "Started container", "type": "Normal"},
		}}
	}
	for _, c := range asSlice(props["containers"]) {
		cp, _ := c.(map[string]any)["properties"].(map[string]any)
		if cp == nil {
			continue
		}
		// Secure values are never returned.
		for _, e := range asSlice(cp["environmentVariables"]) {
			if em, ok := e.(map[string]any); ok && em["secureValue"] != nil {
				delete(em, "secureValue")
			}
		}
		if started {
			cp["instanceView"] = map[string]any{
				"restartCount": 0,
				"currentState": map[string]any{"state": "Running", "startTime": startTime, "detailStatus": ""},
				"events":       []any{},
			}
		} else {
			cp["instanceView"] = map[string]any{
				"restartCount": 0,
				"currentState": map[string]any{"state": "Waiting", "detailStatus": "Pulling"},
				"events":       []any{},
			}
		}
	}
	if ip, ok := props["ipAddress"].(map[string]any); ok && started {
		ip["ip"] = "20.61.0.10"
	}
	return out
}

func (s *Server) get(w http.ResponseWriter, rg, name string) {
	s.mu.Lock()
	g, ok := s.groups[rg+"/"+name]
	var out map[string]any
	if ok {
		out = s.render(g, time.Now())
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, Fault{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: fmt.Sprintf(
			"The Resource 'Microsoft.ContainerInstance/containerGroups/%s' under resource group '%s' was not found.", name, rg)})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) delete(w http.ResponseWriter, rg, name string) {
	s.mu.Lock()
	g, ok := s.groups[rg+"/"+name]
	var out map[string]any
	if ok {
		out = s.render(g, time.Now())
		delete(s.groups, rg+"/"+name)
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) list(w http.ResponseWriter, rg string) {
	s.mu.Lock()
	now := time.Now()
	var names []string
	for k := range s.groups {
		if strings.HasPrefix(k, rg+"/") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	value := make([]any, 0, len(names))
	for _, k := range names {
		value = append(value, s.render(s.groups[k], now))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"value": value})
}

// logs returns one line per second the container has been running, as "<container> tick N", plus the start.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, rg, name, container string) {
	s.mu.Lock()
	g, ok := s.groups[rg+"/"+name]
	s.mu.Unlock()
	if !ok {
		writeError(w, Fault{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: "container group not found"})
		return
	}
	start := g.created.Add(s.StartDelay)
	var lines []string
	if time.Now().After(start) {
		lines = append(lines, fmt.Sprintf("%s started in container group %s", container, name))
		for i := 1; start.Add(time.Duration(i)*time.Second).Before(time.Now()) && i < 1000; i++ {
			lines = append(lines, fmt.Sprintf("%s tick %d", container, i))
		}
	}
	if tail := r.URL.Query().Get("tail"); tail != "" {
		var n int
		if _, err := fmt.Sscan(tail, &n); err == nil && n < len(lines) {
			lines = lines[len(lines)-n:]
		}
	}
	content := ""
	if len(lines) > 0 {
		content = strings.Join(lines, "\n") + "\n"
	}
	writeJSON(w, http.StatusOK, map[string]any{"content": content})
}

// execSession is one exec the API handed out a websocket for.
type execSession struct {
	password string
	command  string
}

// TLSConfig trusts the server's certificate (for the exec websocket).
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// exec answers ACI's exec API: a websocket URI and a one-time password.
func (s *Server) exec(w http.ResponseWriter, r *http.Request, rg, name string) {
	var req struct {
		Command string `json:"command"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Command == "" {
		writeError(w, Fault{Status: http.StatusBadRequest, Code: "InvalidRequestContent", Message: "command is required"})
		return
	}
	s.mu.Lock()
	_, ok := s.groups[rg+"/"+name]
	token := fmt.Sprintf("t%d", len(s.execs)+1)
	pw := fmt.Sprintf("pw-%s-%d", token, time.Now().UnixNano())
	if ok {
		s.execs[token] = execSession{password: pw, command: req.Command}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, Fault{Status: http.StatusNotFound, Code: "ResourceNotFound", Message: "container group not found"})
		return
	}
	wsURL := "wss" + strings.TrimPrefix(s.srv.URL, "https") + "/exec-ws/" + token
	writeJSON(w, http.StatusOK, map[string]any{"webSocketUri": wsURL, "password": pw})
}

var upgrader = websocket.Upgrader{}

// execSocket runs an exec session: the first message must be the password; "echo ARGS" prints ARGS, "cat"
// echoes stdin until the client closes, anything else prints "ran: COMMAND".
func (s *Server) execSocket(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/exec-ws/")
	s.mu.Lock()
	sess, ok := s.execs[token]
	delete(s.execs, token)
	s.mu.Unlock()
	if !ok {
		http.Error(w, "unknown exec session", http.StatusNotFound)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	_, pw, err := conn.ReadMessage()
	if err != nil || string(pw) != sess.password {
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "bad password"))
		return
	}
	switch {
	case strings.HasPrefix(sess.command, "echo "):
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte(strings.TrimPrefix(sess.command, "echo ")+"\n"))
	case sess.command == "cat":
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			_ = conn.WriteMessage(websocket.BinaryMessage, msg)
		}
	default:
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte("ran: "+sess.command+"\n"))
	}
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}
