package tidal_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tidalscale/tidal/metricsadapter/stream"
)

const streamMount = "/var/run/tidal/metrics-adapter"

// rendered indexes a rendering by kind and name.
type rendered map[string]*unstructured.Unstructured

func index(objs []*unstructured.Unstructured) rendered {
	r := rendered{}
	for _, o := range objs {
		r[o.GetKind()+"/"+o.GetName()] = o
	}
	return r
}

func (r rendered) count(kind string) int {
	n := 0
	for k := range r {
		if strings.HasPrefix(k, kind+"/") {
			n++
		}
	}
	return n
}

// container is the first container of a Deployment: its args, volume mounts and the pod's volumes.
type container struct {
	args    []string
	mounts  map[string]string // volume name → mount path
	secrets map[string]string // volume name → Secret name
}

func (r rendered) container(t *testing.T, deployment string) container {
	t.Helper()
	d := r["Deployment/"+deployment]
	if d == nil {
		t.Fatalf("no Deployment %s", deployment)
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	c0 := cs[0].(map[string]any)
	out := container{mounts: map[string]string{}, secrets: map[string]string{}}
	for _, a := range c0["args"].([]any) {
		out.args = append(out.args, a.(string))
	}
	ms, _ := c0["volumeMounts"].([]any)
	for _, m := range ms {
		m := m.(map[string]any)
		out.mounts[m["name"].(string)] = m["mountPath"].(string)
	}
	vs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	for _, v := range vs {
		v := v.(map[string]any)
		if s, ok := v["secret"].(map[string]any); ok {
			out.secrets[v["name"].(string)] = s["secretName"].(string)
		}
	}
	return out
}

func (c container) flag(name string) (string, bool) {
	for _, a := range c.args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestOperatorTakesSamplesFromTheAdapter: by default the operator gets the four --metrics-adapter-* flags and
// the mounted client certificate, and the rendered certificates complete a mutual-TLS handshake with the
// stream's own TLS configuration, exactly as the two pods would.
func TestOperatorTakesSamplesFromTheAdapter(t *testing.T) {
	objs, err := render(t, loadChart(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := index(objs)
	op := r.container(t, "tidal-operator")
	want := map[string]string{
		"metrics-adapter-address": "tidal-metrics-adapter.tidal-system.svc:9090",
		"metrics-adapter-ca":      streamMount + "/ca.crt",
		"metrics-adapter-cert":    streamMount + "/tls.crt",
		"metrics-adapter-key":     streamMount + "/tls.key",
	}
	for f, v := range want {
		if got, ok := op.flag(f); got != v {
			t.Errorf("operator --%s = %q (set %t), want %q", f, got, ok, v)
		}
	}
	if op.mounts["metrics-adapter-client"] != streamMount || op.secrets["metrics-adapter-client"] != "tidal-operator-stream-tls" {
		t.Errorf("operator mounts %v of secrets %v, want Secret tidal-operator-stream-tls at %s", op.mounts, op.secrets, streamMount)
	}
	ad := r.container(t, "tidal-metrics-adapter")
	if ad.secrets["tls"] != "tidal-metrics-adapter-tls" || ad.mounts["tls"] != "/var/run/tidal/tls" {
		t.Fatalf("adapter mounts %v of secrets %v", ad.mounts, ad.secrets)
	}
	for f, v := range map[string]string{"stream-addr": ":9090", "stream-tls-cert-file": "/var/run/tidal/tls/tls.crt",
		"stream-tls-key-file": "/var/run/tidal/tls/tls.key", "stream-client-ca-file": "/var/run/tidal/tls/ca.crt"} {
		if got, _ := ad.flag(f); got != v {
			t.Errorf("adapter --%s = %q, want %q", f, got, v)
		}
	}

	// Write both Secrets where the pods mount them and connect with the stream's TLS configs.
	adapterDir, operatorDir := writeSecret(t, r, "tidal-metrics-adapter-tls"), writeSecret(t, r, "tidal-operator-stream-tls")
	serverTLS, err := stream.ServerTLSConfig(stream.TLSFiles{CertFile: filepath.Join(adapterDir, "tls.crt"),
		KeyFile: filepath.Join(adapterDir, "tls.key"), CAFile: filepath.Join(adapterDir, "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := strings.Cut(want["metrics-adapter-address"], ":")
	clientTLS, err := stream.ClientTLSConfig(stream.TLSFiles{CertFile: filepath.Join(operatorDir, "tls.crt"),
		KeyFile: filepath.Join(operatorDir, "tls.key"), CAFile: filepath.Join(operatorDir, "ca.crt"), ServerName: host})
	if err != nil {
		t.Fatal(err)
	}
	handshake(t, serverTLS, clientTLS)
	if ca := pemCert(t, r, "tidal-metrics-adapter-ca", "tls.crt"); !ca.IsCA {
		t.Error("tidal-metrics-adapter-ca holds no CA certificate")
	}
	if cn := pemCert(t, r, "tidal-operator-stream-tls", "tls.crt").Subject.CommonName; cn != "tidal-operator" {
		t.Errorf("operator client certificate CN = %q, want tidal-operator", cn)
	}
}

func writeSecret(t *testing.T, r rendered, name string) string {
	t.Helper()
	s := r["Secret/"+name]
	if s == nil {
		t.Fatalf("no Secret %s", name)
	}
	dir := t.TempDir()
	data, _, _ := unstructured.NestedStringMap(s.Object, "data")
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("Secret %s key %s: %v", name, k, err)
		}
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pemCert(t *testing.T, r rendered, secret, key string) *x509.Certificate {
	t.Helper()
	v, _, _ := unstructured.NestedString(r["Secret/"+secret].Object, "data", key)
	b, _ := base64.StdEncoding.DecodeString(v)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("Secret %s key %s: no PEM", secret, key)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshake runs one TLS handshake over a loopback connection, failing the test if either side refuses.
func handshake(t *testing.T, server, client *tls.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		serverErr <- tls.Server(c, server).HandshakeContext(context.Background())
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	client = client.Clone()
	client.NextProtos = []string{"h2"}
	if err := tls.Client(raw, client).HandshakeContext(t.Context()); err != nil {
		t.Fatalf("operator → adapter handshake: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("adapter accepting the operator's client certificate: %v", err)
	}
}

func TestOperatorPollsInProcessWithoutTheAdapter(t *testing.T) {
	objs, err := render(t, loadChart(t), vals("metricsAdapter.enabled", false))
	if err != nil {
		t.Fatal(err)
	}
	r := index(objs)
	op := r.container(t, "tidal-operator")
	for _, a := range op.args {
		if strings.HasPrefix(a, "--metrics-adapter-") {
			t.Errorf("operator has %s with the adapter disabled", a)
		}
	}
	if _, ok := op.secrets["metrics-adapter-client"]; ok {
		t.Error("operator mounts the stream client certificate with the adapter disabled")
	}
	if n := r.count("Secret"); n != 0 {
		t.Errorf("%d Secrets rendered with the adapter disabled, want 0", n)
	}
}

func TestStreamCertificatesFromCertManager(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		vals                      map[string]any
		wantIssuers, wantCerts    int
		wantIssuer, wantIssuerKnd string
	}{
		{name: "self-signed CA chain", vals: vals("metricsAdapter.tls.mode", "certManager"),
			wantIssuers: 2, wantCerts: 3, wantIssuer: "tidal-metrics-adapter-ca", wantIssuerKnd: "Issuer"},
		{name: "cluster issuer", vals: vals("metricsAdapter.tls.mode", "certManager",
			"metricsAdapter.tls.certManager.issuerRef", map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}),
			wantIssuers: 0, wantCerts: 2, wantIssuer: "corp-ca", wantIssuerKnd: "ClusterIssuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := render(t, loadChart(t), tc.vals)
			if err != nil {
				t.Fatal(err)
			}
			r := index(objs)
			if r.count("Secret") != 0 || r.count("Issuer") != tc.wantIssuers || r.count("Certificate") != tc.wantCerts {
				t.Errorf("%d Secrets, %d Issuers, %d Certificates; want 0, %d, %d", r.count("Secret"), r.count("Issuer"), r.count("Certificate"), tc.wantIssuers, tc.wantCerts)
			}
			for name, usage := range map[string]string{"tidal-metrics-adapter": "server auth", "tidal-operator-stream-tls": "client auth"} {
				c := r["Certificate/"+name]
				if c == nil {
					t.Fatalf("no Certificate %s", name)
				}
				secret, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
				issuer, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "name")
				kind, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "kind")
				usages, _, _ := unstructured.NestedStringSlice(c.Object, "spec", "usages")
				if issuer != tc.wantIssuer || kind != tc.wantIssuerKnd || !slices.Contains(usages, usage) {
					t.Errorf("Certificate %s: issuer %s %s, usages %v; want %s %s with %q", name, kind, issuer, usages, tc.wantIssuerKnd, tc.wantIssuer, usage)
				}
				if name == "tidal-operator-stream-tls" && secret != name {
					t.Errorf("operator Certificate writes Secret %s", secret)
				}
			}
			op := r.container(t, "tidal-operator")
			if op.secrets["metrics-adapter-client"] != "tidal-operator-stream-tls" {
				t.Errorf("operator mounts %v, want the cert-manager Secret tidal-operator-stream-tls", op.secrets)
			}
			if v, _ := op.flag("metrics-adapter-address"); v == "" {
				t.Error("operator has no --metrics-adapter-address in cert-manager mode")
			}
		})
	}
}

func TestStreamCertificatesFromExistingSecrets(t *testing.T) {
	base := vals("metricsAdapter.tls.mode", "secret", "metricsAdapter.tls.secretName", "my-tls", "metricsAdapter.tls.caBundle", "Q0E=")
	if _, err := render(t, loadChart(t), base); err == nil || !strings.Contains(err.Error(), "metricsAdapter.tls.clientSecretName") {
		t.Fatalf("render without clientSecretName: %v, want an error naming metricsAdapter.tls.clientSecretName", err)
	}
	base["metricsAdapter"].(map[string]any)["tls"].(map[string]any)["clientSecretName"] = "my-operator-tls"
	objs, err := render(t, loadChart(t), base)
	if err != nil {
		t.Fatal(err)
	}
	if s := index(objs).container(t, "tidal-operator").secrets["metrics-adapter-client"]; s != "my-operator-tls" {
		t.Errorf("operator mounts Secret %q, want my-operator-tls", s)
	}
}
