package containerd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// tokenFile keeps one projected service-account token fresh in a volume directory.
type tokenFile struct {
	r    *podRun
	dir  string
	proj backend.TokenProjection

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

// startTokens requests every projected token of the pod (bound to the pod, as the kubelet does), writes it and
// schedules its refresh. A failure leaves the pod waiting and is retried by run.
func (r *podRun) startTokens() error {
	r.mu.Lock()
	started := r.tokens != nil
	dirs := r.volDirs
	r.mu.Unlock()
	if started {
		return nil
	}
	var files []*tokenFile
	for name, v := range r.vols {
		for _, t := range v.Tokens {
			files = append(files, &tokenFile{r: r, dir: dirs[name], proj: t})
		}
	}
	if len(files) > 0 && r.b.opts.Client == nil {
		return fmt.Errorf("pod mounts a service-account token but the containerd backend has no API client to request one")
	}
	for _, f := range files {
		if _, err := f.refresh(context.Background()); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.tokens = append([]*tokenFile{}, files...)
	r.mu.Unlock()
	return nil
}

// refresh requests a token, writes it and schedules the next refresh.
func (t *tokenFile) refresh(ctx context.Context) (time.Time, error) {
	r := t.r
	exp := t.proj.ExpirationSeconds
	if exp == 0 {
		exp = 3607 // the API server's default for bound tokens
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: r.pod.Name, UID: r.pod.UID},
	}}
	if t.proj.Audience != "" {
		req.Spec.Audiences = []string{t.proj.Audience}
	}
	sa := r.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	issued := time.Now()
	resp, err := r.b.opts.Client.CoreV1().ServiceAccounts(r.pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("service account %s/%s: token request: %w", r.pod.Namespace, sa, err)
	}
	if err := writeFileAtomic(t.dir, t.proj.Path, []byte(resp.Status.Token)); err != nil {
		return time.Time{}, fmt.Errorf("service account %s/%s: write token: %w", r.pod.Namespace, sa, err)
	}
	expiry := resp.Status.ExpirationTimestamp.Time
	next := r.b.opts.TokenRefresh(issued, expiry)
	t.schedule(next)
	r.logger().Debug("service-account token written", zap.String("path", t.proj.Path), zap.Time("expiry", expiry), zap.Duration("refreshIn", next))
	return expiry, nil
}

func (t *tokenFile) schedule(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.timer = time.AfterFunc(d, func() {
		if _, err := t.refresh(context.Background()); err != nil {
			t.r.logger().Warn("service-account token refresh failed; retrying in 10s", zap.Error(err))
			t.schedule(10 * time.Second)
		}
	})
}

func (t *tokenFile) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	if t.timer != nil {
		t.timer.Stop()
	}
}
