package provider

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// materialiseVolumes reads the content of the pod's ConfigMap, Secret and emptyDir volumes (ConfigMaps and Secrets
// by name, with the node's identity: podobjects.go). Other volume types are not supported by a virtual node and are reported as a PodError. A missing,
// non-optional ConfigMap or Secret is a plain error: the pod controller retries, as the kubelet would.
func (p *Provider) materialiseVolumes(pod *corev1.Pod) (map[string]backend.Volume, error) {
	out := map[string]backend.Volume{}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.EmptyDir != nil:
			out[v.Name] = backend.Volume{EmptyDir: true}
		case v.ConfigMap != nil:
			vol, err := p.configMapVolume(pod.Namespace, v.ConfigMap)
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s: volume %q: %w", pod.Namespace, pod.Name, v.Name, err)
			}
			out[v.Name] = vol
		case v.Secret != nil:
			vol, err := p.secretVolume(pod.Namespace, v.Secret)
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s: volume %q: %w", pod.Namespace, pod.Name, v.Name, err)
			}
			out[v.Name] = vol
		case v.DownwardAPI != nil:
			files, err := downwardFiles(pod, v.DownwardAPI.Items)
			if err != nil {
				return nil, &backend.PodError{Reason: backend.ReasonInvalidPod, Message: fmt.Sprintf("volume %q: %v", v.Name, err)}
			}
			out[v.Name] = backend.Volume{Files: files}
		case v.Projected != nil:
			vol, err := p.projectedVolume(pod, v.Projected)
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s: volume %q: %w", pod.Namespace, pod.Name, v.Name, err)
			}
			out[v.Name] = vol
		default:
			return nil, &backend.PodError{
				Reason:  backend.ReasonUnsupportedFeature,
				Message: fmt.Sprintf("volume %q: only configMap, secret, emptyDir, downwardAPI and projected volumes are supported on a virtual node", v.Name),
			}
		}
	}
	return out, nil
}

// projectedVolume merges the sources of a projected volume (the API server's kube-api-access-* is one: a token,
// the kube-root-ca.crt ConfigMap and the namespace). Tokens are left to the backend, which can refresh them.
func (p *Provider) projectedVolume(pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (backend.Volume, error) {
	out := backend.Volume{Files: map[string][]byte{}}
	for i, s := range src.Sources {
		var files map[string][]byte
		switch {
		case s.ServiceAccountToken != nil:
			exp := int64(0)
			if s.ServiceAccountToken.ExpirationSeconds != nil {
				exp = *s.ServiceAccountToken.ExpirationSeconds
			}
			out.Tokens = append(out.Tokens, backend.TokenProjection{
				Path: s.ServiceAccountToken.Path, Audience: s.ServiceAccountToken.Audience, ExpirationSeconds: exp})
			out.Secret = true
			continue
		case s.ConfigMap != nil:
			vol, err := p.configMapVolume(pod.Namespace, &corev1.ConfigMapVolumeSource{
				LocalObjectReference: s.ConfigMap.LocalObjectReference, Items: s.ConfigMap.Items, Optional: s.ConfigMap.Optional})
			if err != nil {
				return backend.Volume{}, fmt.Errorf("sources[%d]: %w", i, err)
			}
			files = vol.Files
		case s.Secret != nil:
			vol, err := p.secretVolume(pod.Namespace, &corev1.SecretVolumeSource{
				SecretName: s.Secret.Name, Items: s.Secret.Items, Optional: s.Secret.Optional})
			if err != nil {
				return backend.Volume{}, fmt.Errorf("sources[%d]: %w", i, err)
			}
			files, out.Secret = vol.Files, true
		case s.DownwardAPI != nil:
			var err error
			if files, err = downwardFiles(pod, s.DownwardAPI.Items); err != nil {
				return backend.Volume{}, &backend.PodError{Reason: backend.ReasonInvalidPod, Message: fmt.Sprintf("sources[%d]: %v", i, err)}
			}
		default:
			return backend.Volume{}, &backend.PodError{Reason: backend.ReasonUnsupportedFeature,
				Message: fmt.Sprintf("sources[%d]: only serviceAccountToken, configMap, secret and downwardAPI sources are supported on a virtual node", i)}
		}
		for k, v := range files {
			out.Files[k] = v
		}
	}
	return out, nil
}

// downwardFiles resolves the items of a downwardAPI volume (pod fields; container resources are not offered).
func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("items %q: only fieldRef is supported on a virtual node", it.Path)
		}
		v, err := podField(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, fmt.Errorf("items %q: %w", it.Path, err)
		}
		out[it.Path] = []byte(v)
	}
	return out, nil
}

// podField is the value of a downward API field path, formatted as the kubelet writes it to a file.
func podField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if strings.HasPrefix(path, prefix) && strings.HasSuffix(path, "']") {
			key := path[len(prefix) : len(path)-2]
			if prefix == "metadata.labels['" {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("fieldPath %q: not supported in a volume", path)
}

// formatMap writes key="value" lines sorted by key, as the kubelet does for labels and annotations.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

func (p *Provider) configMapVolume(namespace string, src *corev1.ConfigMapVolumeSource) (backend.Volume, error) {
	optional := src.Optional != nil && *src.Optional
	if p.opts.ConfigMaps == nil {
		return backend.Volume{}, fmt.Errorf("configMap %q: no ConfigMap lister", src.Name)
	}
	cm, err := p.opts.ConfigMaps.ConfigMaps(namespace).Get(src.Name)
	if apierrors.IsNotFound(err) && optional {
		return backend.Volume{Files: map[string][]byte{}}, nil
	}
	if err != nil {
		return backend.Volume{}, fmt.Errorf("configMap %q: %w", src.Name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	files, err := project(data, src.Items, optional)
	if err != nil {
		return backend.Volume{}, fmt.Errorf("configMap %q: %w", src.Name, err)
	}
	return backend.Volume{Files: files}, nil
}

func (p *Provider) secretVolume(namespace string, src *corev1.SecretVolumeSource) (backend.Volume, error) {
	optional := src.Optional != nil && *src.Optional
	if p.opts.Secrets == nil {
		return backend.Volume{}, fmt.Errorf("secret %q: no Secret lister", src.SecretName)
	}
	s, err := p.opts.Secrets.Secrets(namespace).Get(src.SecretName)
	if apierrors.IsNotFound(err) && optional {
		return backend.Volume{Files: map[string][]byte{}, Secret: true}, nil
	}
	if err != nil {
		return backend.Volume{}, fmt.Errorf("secret %q: %w", src.SecretName, err)
	}
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	files, err := project(data, src.Items, optional)
	if err != nil {
		return backend.Volume{}, fmt.Errorf("secret %q: %w", src.SecretName, err)
	}
	return backend.Volume{Files: files, Secret: true}, nil
}

// project applies items (key → path) to data; no items means every key under its own name.
func project(data map[string][]byte, items []corev1.KeyToPath, optional bool) (map[string][]byte, error) {
	if len(items) == 0 {
		return data, nil
	}
	out := map[string][]byte{}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("items: key %q not found", it.Key)
		}
		out[it.Path] = v
	}
	return out, nil
}
