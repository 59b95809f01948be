package containerd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
)

// pullError is an image that could not be had; reason is ErrImagePull or InvalidImageName.
type pullError struct {
	reason string
	err    error
}

func (e *pullError) Error() string { return e.err.Error() }
func (e *pullError) Unwrap() error { return e.err }

// pullImage makes the container's image available, unpacked: taken from the namespace when there (unless
// imagePullPolicy is Always), pulled from its registry otherwise with the pod's imagePullSecrets. An Always
// image that cannot be pulled but is in the namespace (imported) is used as it is.
func (c *container) pullImage(ctx context.Context) error {
	if c.image != nil {
		return nil
	}
	b := c.run.b
	named, err := reference.ParseDockerRef(c.spec.Image)
	if err != nil {
		return &pullError{reason: ReasonInvalidImageName, err: fmt.Errorf("image %q: %w", c.spec.Image, err)}
	}
	ref := named.String()
	local, lerr := b.client.GetImage(ctx, ref)
	if lerr == nil && c.spec.ImagePullPolicy != corev1.PullAlways {
		return c.useImage(ctx, local)
	}
	if lerr != nil && c.spec.ImagePullPolicy == corev1.PullNever {
		return &pullError{reason: "ErrImageNeverPull", err: fmt.Errorf("image %q is not present and imagePullPolicy is Never", ref)}
	}
	pctx, cancel := context.WithTimeout(ctx, b.opts.PullTimeout)
	defer cancel()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(b.plainHTTP),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(c.run.credentials))),
	)})
	opts := []ctrd.RemoteOpt{ctrd.WithPullUnpack, ctrd.WithResolver(resolver)}
	if b.opts.Snapshotter != "" {
		opts = append(opts, ctrd.WithPullSnapshotter(b.opts.Snapshotter))
	}
	img, err := b.client.Pull(pctx, ref, opts...)
	if err != nil {
		if lerr == nil {
			c.logger().Warn("pull failed; using the image present in the namespace", zap.String("image", ref), zap.Error(err))
			return c.useImage(ctx, local)
		}
		return &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("pull image %q: %w", ref, err)}
	}
	c.image = img
	return nil
}

func (c *container) useImage(ctx context.Context, img ctrd.Image) error {
	sn := c.run.b.opts.Snapshotter
	ok, err := img.IsUnpacked(ctx, sn)
	if err != nil {
		return fmt.Errorf("image %q: %w", img.Name(), err)
	}
	if !ok {
		if err := img.Unpack(ctx, sn); err != nil {
			return &pullError{reason: ReasonErrImagePull, err: fmt.Errorf("unpack image %q: %w", img.Name(), err)}
		}
	}
	c.image = img
	return nil
}

func (b *Backend) plainHTTP(host string) (bool, error) {
	if b.opts.PlainHTTP != nil {
		return b.opts.PlainHTTP(host)
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback(), nil
}

// credentials returns the username and password for host from the pod's imagePullSecrets
// (kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg); none means anonymous.
func (r *podRun) credentials(host string) (string, string, error) {
	lister := r.b.opts.Secrets
	if lister == nil {
		return "", "", nil
	}
	for _, ref := range r.pod.Spec.ImagePullSecrets {
		s, err := lister.Secrets(r.pod.Namespace).Get(ref.Name)
		if err != nil {
			r.logger().Warn("imagePullSecret not readable", zap.String("secret", ref.Name), zap.Error(err))
			continue
		}
		auths := map[string]dockerAuth{}
		switch {
		case len(s.Data[corev1.DockerConfigJsonKey]) > 0:
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
				r.logger().Warn("imagePullSecret: bad .dockerconfigjson", zap.String("secret", ref.Name))
				continue
			}
			auths = cfg.Auths
		case len(s.Data[corev1.DockerConfigKey]) > 0:
			if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
				r.logger().Warn("imagePullSecret: bad .dockercfg", zap.String("secret", ref.Name))
				continue
			}
		}
		for k, a := range auths {
			if registryHost(k) != host {
				continue
			}
			if a.Username == "" && a.Auth != "" {
				if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					if u, p, ok := strings.Cut(string(dec), ":"); ok {
						return u, p, nil
					}
				}
			}
			return a.Username, a.Password, nil
		}
	}
	return "", "", nil
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// registryHost reduces a docker config key ("https://host:port/v1/", "host") to host[:port].
func registryHost(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	if k == "index.docker.io" || k == "docker.io" {
		return "registry-1.docker.io"
	}
	return k
}
