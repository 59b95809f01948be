package aci

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
	"github.com/tidalscale/tidal/virtualnode/backend/aci/acifake"
)

func TestGroupName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)
	cases := []struct {
		name string
		key  backend.Key
		want string
	}{
		{name: "simple", key: backend.Key{Namespace: "default", Name: "web-1"}, want: "default-web-1"},
		{name: "upper case and dots", key: backend.Key{Namespace: "Team.A", Name: "api..x"}, want: "team-a-api-x"},
		{name: "long is cut and hashed", key: backend.Key{Namespace: strings.Repeat("n", 40), Name: strings.Repeat("p", 40)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := GroupName(tc.key)
			if len(got) > 63 || !valid.MatchString(got) {
				t.Errorf("GroupName(%v) = %q: not a valid container group name", tc.key, got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("GroupName(%v) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
	a := GroupName(backend.Key{Namespace: strings.Repeat("n", 40), Name: strings.Repeat("p", 40) + "a"})
	b := GroupName(backend.Key{Namespace: strings.Repeat("n", 40), Name: strings.Repeat("p", 40) + "b"})
	if a == b {
		t.Errorf("long names that differ at the end map to the same group %q", a)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		code      string
		reason    string
		retryable bool
		podError  bool
	}{
		{name: "quota", status: 409, code: "ContainerGroupQuotaReached", reason: backend.ReasonQuotaExceeded, retryable: true, podError: true},
		{name: "image", status: 400, code: "InaccessibleImage", reason: "ErrImagePull", retryable: true, podError: true},
		{name: "invalid spec", status: 400, code: "InvalidContainerGroupProperties", reason: backend.ReasonInvalidPod, podError: true},
		{name: "capacity", status: 409, code: "ResourceRequestsNotAvailable", reason: "CapacityNotAvailable", retryable: true, podError: true},
		{name: "server error stays transient", status: 500, code: "InternalServerError"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("create", &azcore.ResponseError{StatusCode: tc.status, ErrorCode: tc.code})
			pe, ok := backend.AsPodError(err)
			if ok != tc.podError {
				t.Fatalf("classify = %v, PodError %v, want %v", err, ok, tc.podError)
			}
			if ok && (pe.Reason != tc.reason || pe.Retryable != tc.retryable) {
				t.Errorf("PodError = %+v, want reason %s retryable %v", pe, tc.reason, tc.retryable)
			}
		})
	}
}

func TestCreateSendsACIContainerGroupJSON(t *testing.T) {
	fake := acifake.New()
	defer fake.Close()
	var mu sync.Mutex
	var changes []*corev1.PodStatus
	b, err := New(Options{SubscriptionID: "sub", ResourceGroup: "rg", Region: "westeurope", NodeName: "vk",
		Credential: fake.Credential(), ClientOptions: fake.ClientOptions(), PollInterval: 50 * time.Millisecond,
		SubnetIDs: []string{"/subscriptions/sub/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"},
		Changed:   func(_ backend.Key, st *corev1.PodStatus) { mu.Lock(); changes = append(changes, st); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", UID: "u1"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Volumes: []corev1.Volume{{Name: "cfg"}, {Name: "scratch"}},
			Containers: []corev1.Container{{
				Name: "app", Image: "shop/api:3", Command: []string{"/api"}, Args: []string{"--port=8080"},
				Env:          []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "s3cret"}},
				Ports:        []corev1.ContainerPort{{ContainerPort: 8080}},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/api"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")}},
			}}},
	}
	err = b.Create(context.Background(), backend.Pod{Pod: pod, Volumes: map[string]backend.Volume{
		"cfg": {Files: map[string][]byte{"api.yaml": []byte("port: 8080")}}, "scratch": {EmptyDir: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Read the group back as ACI returns it, as plain JSON.
	cl := &http.Client{Transport: fake.ClientOptions().Transport.(*http.Client).Transport}
	req, _ := http.NewRequest(http.MethodGet, fake.URL()+"/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/shop-api?api-version=2023-05-01", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties struct {
			RestartPolicy string `json:"restartPolicy"`
			OSType        string `json:"osType"`
			SubnetIDs     []struct {
				ID string `json:"id"`
			} `json:"subnetIds"`
			IPAddress struct {
				Type string `json:"type"`
			} `json:"ipAddress"`
			Volumes []struct {
				Name     string            `json:"name"`
				Secret   map[string]string `json:"secret"`
				EmptyDir any               `json:"emptyDir"`
			} `json:"volumes"`
			Containers []struct {
				Name       string `json:"name"`
				Properties struct {
					Image     string   `json:"image"`
					Command   []string `json:"command"`
					Resources struct {
						Requests struct {
							CPU        float64 `json:"cpu"`
							MemoryInGB float64 `json:"memoryInGB"`
						} `json:"requests"`
					} `json:"resources"`
					EnvironmentVariables []map[string]any `json:"environmentVariables"`
				} `json:"properties"`
			} `json:"containers"`
		} `json:"properties"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	p := doc.Properties
	c := p.Containers[0].Properties
	checks := []struct {
		name string
		ok   bool
	}{
		{"location", doc.Location == "westeurope"},
		{"tags", doc.Tags[TagNamespace] == "shop" && doc.Tags[TagName] == "api" && doc.Tags[TagNode] == "vk"},
		{"restart policy", p.RestartPolicy == "OnFailure"},
		{"os", p.OSType == "Linux"},
		{"subnet", len(p.SubnetIDs) == 1 && strings.HasSuffix(p.SubnetIDs[0].ID, "/subnets/aci")},
		{"private ip in a vnet", p.IPAddress.Type == "Private"},
		{"image", c.Image == "shop/api:3"},
		{"command", strings.Join(c.Command, " ") == "/api --port=8080"},
		{"cpu", c.Resources.Requests.CPU == 0.25},
		{"memory", c.Resources.Requests.MemoryInGB == 0.6},
		{"secure env not returned", len(c.EnvironmentVariables) == 1 && c.EnvironmentVariables[0]["secureValue"] == nil},
		{"volumes", len(p.Volumes) == 2 && p.Volumes[0].Secret["api.yaml"] == "cG9ydDogODA4MA==" && p.Volumes[1].EmptyDir != nil},
	}
	for _, ck := range checks {
		if !ck.ok {
			t.Errorf("container group %s is wrong: %+v", ck.name, doc)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(changes)
		var last *corev1.PodStatus
		if n > 0 {
			last = changes[n-1]
		}
		mu.Unlock()
		if last != nil && last.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Running status reported; last %+v", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Delete(context.Background(), backend.KeyOf(pod), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(context.Background(), backend.KeyOf(pod), 0); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

func TestCredentialFromSecretNamesMissingKeys(t *testing.T) {
	_, err := CredentialFromSecret(map[string][]byte{SecretClientSecret: []byte("hunter2")})
	if err == nil || !strings.Contains(err.Error(), SecretTenantID) || !strings.Contains(err.Error(), SecretClientID) {
		t.Fatalf("err = %v, want one naming %s and %s", err, SecretTenantID, SecretClientID)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the secret: %v", err)
	}
	if _, err := CredentialFromSecret(map[string][]byte{SecretTenantID: []byte("t"), SecretClientID: []byte("c"), SecretClientSecret: []byte("s")}); err != nil {
		t.Errorf("service principal: %v", err)
	}
}

func TestOptionsValidateNamesFields(t *testing.T) {
	err := Options{}.Validate()
	for _, f := range []string{"subscriptionId", "resourceGroup", "region", "credential", "nodeName"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate() = %v, want it to name %s", err, f)
		}
	}
}
