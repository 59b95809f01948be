// Package triggers resolves a ScaledObject's or ScaledJob's triggers into what scalers are built from: each
// trigger's TriggerAuthentication or ClusterTriggerAuthentication and the scale target's container environment.
// The operator and the metrics adapter both build their samples.ObjectSpec here, so both name the same metrics.
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/triggers/identity"
	"github.com/tidalscale/tidal/autoscaler/triggers/stores"
	"github.com/tidalscale/tidal/scalers"
)

// DegradedError reports that every parameter was resolved but some come from an external secret store that could
// not be read just now: they are the last values it returned, still within --secret-store-ttl. What comes with
// it is usable; the error names the store's field and its error, never a value. Once the TTL is over without a
// successful read, resolution fails with the store's error alone.
type DegradedError struct{ Err error }

func (e *DegradedError) Error() string { return e.Err.Error() }
func (e *DegradedError) Unwrap() error { return e.Err }

// IsDegraded reports whether err is a *DegradedError: the result it came with is usable.
func IsDegraded(err error) bool {
	var d *DegradedError
	return errors.As(err, &d)
}

// Resolver turns a trigger's authenticationRef and the target's container environment into the values scalers
// read. Resolved values are secrets: they go into scalers.TriggerConfig only and are never logged, put in an
// event or written to a status.
type Resolver struct {
	Kube  kubernetes.Interface
	Tidal tidalclient.Interface
	// ClusterObjectNamespace is where ClusterTriggerAuthentication secrets and config maps live (the
	// operator's namespace), as in KEDA.
	ClusterObjectNamespace string
	// FileRoot is the directory a ClusterTriggerAuthentication's spec.filePath is read under
	// (--filepath-auth-root-path); empty refuses filePath.
	FileRoot string
	// Identity requests service-account tokens (spec.boundServiceAccountToken) and cloud credentials
	// (spec.podIdentity); nil means one made on first use with Kube and no operator identity (identity.go).
	Identity *identity.Provider

	identityMu sync.Mutex
	// Stores caches the parameters read from external secret stores (--secret-store-ttl); nil reads the stores
	// at each resolution.
	Stores *stores.Cache
	// StoreHTTPClient is the HTTP client of the stores (nil: each store's default); StoreTokens requests
	// service-account tokens for them (nil: the TokenRequest API through Kube).
	StoreHTTPClient *http.Client
	StoreTokens     stores.TokenRequester
	// NoStores leaves the parameters of external secret stores out instead of reading them: the admission
	// webhook's resolver, which must never connect where an author says.
	NoStores bool
}

// Offline is a resolver with r's clients and identity that never reads an external secret store: the admission
// webhook's, which must not connect where an author says. A Resolver holds a mutex and must not be copied.
func (r *Resolver) Offline() *Resolver {
	return &Resolver{Kube: r.Kube, Tidal: r.Tidal, ClusterObjectNamespace: r.ClusterObjectNamespace, FileRoot: r.FileRoot,
		Identity: r.IdentityProvider(), StoreHTTPClient: r.StoreHTTPClient, StoreTokens: r.StoreTokens, NoStores: true}
}

// Env resolves the environment of one container of a pod template: literal values, secretKeyRef and
// configMapKeyRef values, and envFrom. containerName empty means the first container. Missing optional
// references are skipped; a missing required one is an error naming the variable.
func (r *Resolver) Env(ctx context.Context, namespace string, tmpl *corev1.PodTemplateSpec, containerName string) (map[string]string, error) {
	env := map[string]string{}
	if tmpl == nil || len(tmpl.Spec.Containers) == 0 {
		return env, nil
	}
	c := &tmpl.Spec.Containers[0]
	if containerName != "" {
		c = nil
		for i := range tmpl.Spec.Containers {
			if tmpl.Spec.Containers[i].Name == containerName {
				c = &tmpl.Spec.Containers[i]
			}
		}
		if c == nil {
			return nil, fmt.Errorf("spec.scaleTargetRef.envSourceContainerName: no container %q in the target's pod template", containerName)
		}
	}
	secrets := map[string]*corev1.Secret{}
	configMaps := map[string]*corev1.ConfigMap{}
	getSecret := func(name string) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := r.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		secrets[name] = s
		return s, nil
	}
	getConfigMap := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := r.Kube.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.SecretRef != nil:
			s, err := getSecret(from.SecretRef.Name)
			if err != nil {
				if isOptional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom secret %q: %w", c.Name, from.SecretRef.Name, err)
			}
			for k, v := range s.Data {
				env[from.Prefix+k] = string(v)
			}
		case from.ConfigMapRef != nil:
			cm, err := getConfigMap(from.ConfigMapRef.Name)
			if err != nil {
				if isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom configMap %q: %w", c.Name, from.ConfigMapRef.Name, err)
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := getSecret(ref.Name)
			if err == nil {
				if v, ok := s.Data[ref.Key]; ok {
					env[e.Name] = string(v)
					continue
				}
				err = fmt.Errorf("key %q not found", ref.Key)
			}
			if !isOptional(ref.Optional) {
				return nil, fmt.Errorf("container %q env %s from secret %q: %w", c.Name, e.Name, ref.Name, err)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := getConfigMap(ref.Name)
			if err == nil {
				if v, ok := cm.Data[ref.Key]; ok {
					env[e.Name] = v
					continue
				}
				err = fmt.Errorf("key %q not found", ref.Key)
			}
			if !isOptional(ref.Optional) {
				return nil, fmt.Errorf("container %q env %s from configMap %q: %w", c.Name, e.Name, ref.Name, err)
			}
		}
	}
	return env, nil
}

func isOptional(b *bool) bool { return b != nil && *b }

// AuthParams resolves a trigger's authenticationRef. An authentication that sets a field of
// tidalv1alpha1.NotSupportedYet (one admitted before the webhook refused them) is an error naming the field. env
// is the resolved environment of the target's containers keyed by container name ("" is the default container)
// for spec.env entries.
//
// When an external secret store cannot be read but the values it returned earlier are still within their TTL,
// the parameters come with a *DegradedError: they are usable, and the error says which store failed and why.
func (r *Resolver) AuthParams(ctx context.Context, namespace string, ref *tidalv1alpha1.AuthenticationRef, envOf func(container string) (map[string]string, error)) (map[string]string, error) {
	params, _, err := r.authParams(ctx, namespace, ref, envOf)
	return params, err
}

// authParams is AuthParams, also returning when values read from external secret stores are due for a refresh
// (zero when none are used).
func (r *Resolver) authParams(ctx context.Context, namespace string, ref *tidalv1alpha1.AuthenticationRef, envOf func(container string) (map[string]string, error)) (map[string]string, time.Time, error) {
	if ref == nil {
		return nil, time.Time{}, nil
	}
	var (
		spec tidalv1alpha1.TriggerAuthenticationSpec
		key  stores.Key
	)
	secretNS := namespace
	switch ref.GetKind() {
	case tidalv1alpha1.KindTriggerAuthentication:
		ta, err := r.Tidal.TidalV1alpha1().TriggerAuthentications(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("authenticationRef: TriggerAuthentication %q: %w", ref.Name, err)
		}
		if errs := tidalv1alpha1.UnsupportedFields(ta); len(errs) > 0 {
			return nil, time.Time{}, fmt.Errorf("authenticationRef: TriggerAuthentication %q: %w", ref.Name, errs.ToAggregate())
		}
		spec = ta.Spec
		key = stores.Key{Kind: tidalv1alpha1.KindTriggerAuthentication, Namespace: ta.Namespace, Name: ta.Name, ResourceVersion: ta.ResourceVersion}
	case tidalv1alpha1.KindClusterTriggerAuthentication:
		cta, err := r.Tidal.TidalV1alpha1().ClusterTriggerAuthentications().Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("authenticationRef: ClusterTriggerAuthentication %q: %w", ref.Name, err)
		}
		if errs := tidalv1alpha1.UnsupportedFields(cta); len(errs) > 0 {
			return nil, time.Time{}, fmt.Errorf("authenticationRef: ClusterTriggerAuthentication %q: %w", ref.Name, errs.ToAggregate())
		}
		spec = cta.Spec
		key = stores.Key{Kind: tidalv1alpha1.KindClusterTriggerAuthentication, Name: cta.Name, ResourceVersion: cta.ResourceVersion}
		secretNS = r.ClusterObjectNamespace
		if spec.FilePath != "" {
			params, err := r.fileParams(spec.FilePath)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("ClusterTriggerAuthentication %q: spec.filePath: %w", ref.Name, err)
			}
			return params, time.Time{}, nil
		}
	default:
		return nil, time.Time{}, fmt.Errorf("authenticationRef.kind: want TriggerAuthentication or ClusterTriggerAuthentication, got %q", ref.Kind)
	}
	if spec.FilePath != "" {
		// The webhook refuses it; one admitted before is refused here too.
		return nil, time.Time{}, fmt.Errorf("TriggerAuthentication %q: spec.filePath: only a ClusterTriggerAuthentication may read parameters from a file", ref.Name)
	}
	params := map[string]string{}
	for i, s := range spec.SecretTargetRef {
		sec, err := r.Kube.CoreV1().Secrets(secretNS).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.secretTargetRef[%d]: secret %q: %w", ref.GetKind(), ref.Name, i, s.Name, err)
		}
		v, ok := sec.Data[s.Key]
		if !ok {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.secretTargetRef[%d]: secret %q has no key %q", ref.GetKind(), ref.Name, i, s.Name, s.Key)
		}
		params[s.Parameter] = string(v)
	}
	for i, c := range spec.ConfigMapTargetRef {
		cm, err := r.Kube.CoreV1().ConfigMaps(secretNS).Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.configMapTargetRef[%d]: configMap %q: %w", ref.GetKind(), ref.Name, i, c.Name, err)
		}
		v, ok := cm.Data[c.Key]
		if !ok {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.configMapTargetRef[%d]: configMap %q has no key %q", ref.GetKind(), ref.Name, i, c.Name, c.Key)
		}
		params[c.Parameter] = v
	}
	for i, e := range spec.Env {
		env, err := envOf(e.ContainerName)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.env[%d]: %w", ref.GetKind(), ref.Name, i, err)
		}
		v, ok := env[e.Name]
		if !ok {
			return nil, time.Time{}, fmt.Errorf("%s %q: spec.env[%d]: variable %q not found in the target's container", ref.GetKind(), ref.Name, i, e.Name)
		}
		params[e.Parameter] = v
	}
	if err := r.boundServiceAccountTokens(ctx, ref, secretNS, spec.BoundServiceAccountToken, params); err != nil {
		return nil, time.Time{}, err
	}
	if err := r.oauth2Params(ctx, secretNS, spec.OAuth2, params); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s %q: %w", ref.GetKind(), ref.Name, err)
	}
	refreshAt, err := r.storeParams(ctx, key, secretNS, &spec, params)
	if err != nil {
		return params, refreshAt, fmt.Errorf("%s %q: %w", ref.GetKind(), ref.Name, err)
	}
	return params, refreshAt, nil
}

// storeParams adds the parameters of the external secret stores spec sets to params, in precedence order (a
// later store wins), through the cache. A store serving stale values makes a *DegradedError (params complete);
// any other error stops.
func (r *Resolver) storeParams(ctx context.Context, key stores.Key, secretNS string, spec *tidalv1alpha1.TriggerAuthenticationSpec, params map[string]string) (time.Time, error) {
	var (
		refreshAt time.Time
		stale     []error
	)
	if r.NoStores {
		return time.Time{}, nil
	}
	deps := stores.Deps{Kube: r.Kube, Namespace: secretNS, HTTPClient: r.StoreHTTPClient, Tokens: r.StoreTokens,
		// A store section's podIdentity is Tidal's own (roleArn, azure-workload, gcp): the stores' values are
		// cached per authentication, so no workload's service account applies (stores refuse identityOwner
		// workload).
		PodIdentity: func(ctx context.Context, pi *tidalv1alpha1.AuthPodIdentity) (*scalers.PodIdentity, error) {
			return r.IdentityProvider().Resolve(ctx, pi, secretNS, "")
		},
		GCPProject: r.IdentityProvider().GCP.Project}
	for _, st := range stores.FromSpec(spec) {
		var (
			values map[string]string
			next   time.Time
			err    error
		)
		if r.Stores != nil {
			deps.Now = r.Stores.Now
			k := key
			k.Field = st.Field()
			values, next, err = r.Stores.Get(ctx, k, func(ctx context.Context) (map[string]string, error) { return st.Read(ctx, deps) })
		} else {
			values, err = st.Read(ctx, deps)
		}
		if se := (*stores.StaleError)(nil); errors.As(err, &se) {
			stale = append(stale, err)
		} else if err != nil {
			return time.Time{}, err
		}
		maps.Copy(params, values)
		if !next.IsZero() && (refreshAt.IsZero() || next.Before(refreshAt)) {
			refreshAt = next
		}
	}
	if len(stale) > 0 {
		return refreshAt, &DegradedError{Err: errors.Join(stale...)}
	}
	return refreshAt, nil
}

// fileParams reads a JSON object of parameter → string value from path under FileRoot. os.Root confines the read
// to FileRoot, symbolic links included. Errors name the path, never a value.
func (r *Resolver) fileParams(path string) (map[string]string, error) {
	if r.FileRoot == "" {
		return nil, errors.New("this deployable was started without --filepath-auth-root-path")
	}
	if err := tidalv1alpha1.ValidateAuthFilePath(path); err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	root, err := os.OpenRoot(r.FileRoot)
	if err != nil {
		return nil, fmt.Errorf("--filepath-auth-root-path: %w", err)
	}
	defer root.Close()
	raw, err := root.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	var params map[string]string
	if err := json.Unmarshal(raw, &params); err != nil {
		// Not the decoder's message: it may quote the file's content.
		return nil, fmt.Errorf("%q is not a JSON object of string values", path)
	}
	return params, nil
}
