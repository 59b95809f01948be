package provider

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/tidalscale/tidal/virtualnode/backend"
)

// materialiseVolumes reads the content of the pod's ConfigMap, Secret and emptyDir volumes from the informer
// caches. Other volume types are not supported by a virtual node and are reported as a PodError. A missing,
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
		case v.Projected != nil && isServiceAccountToken(v.Projected):
			// The API server injects kube-api-access-*; backends have no API access to give, so it is empty.
			out[v.Name] = backend.Volume{EmptyDir: true}
		default:
			return nil, &backend.PodError{
				Reason:  backend.ReasonUnsupportedFeature,
				Message: fmt.Sprintf("volume %q: only configMap, secret and emptyDir volumes are supported on a virtual node", v.Name),
			}
		}
	}
	return out, nil
}

func isServiceAccountToken(p *corev1.ProjectedVolumeSource) bool {
	for _, s := range p.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
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
