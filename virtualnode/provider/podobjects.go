package provider

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The Secrets and ConfigMaps a pod references are read one by one, by name, when the pod is created (env, envFrom,
// volumes, imagePullSecrets), never listed or watched: with the node's own identity the Node authorizer allows
// exactly those GETs, and the node holds no copy of every Secret in the cluster. They are served to the pod
// controller and the backends as listers whose Get is a GET and whose List is refused.

// errNoList is returned by List: a virtual node may read only the objects its pods reference.
var errNoList = errors.New("virtual node: Secrets and ConfigMaps are read by name only")

// getTimeout bounds one GET (a lister's Get has no context).
const getTimeout = 30 * time.Second

// byName is a namespace lister whose Get is a GET on the API server.
type byName[T any] struct {
	get func(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}

func (b byName[T]) Get(name string) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), getTimeout)
	defer cancel()
	return b.get(ctx, name, metav1.GetOptions{})
}

func (byName[T]) List(labels.Selector) ([]T, error) { return nil, errNoList }

// secretsByName is a SecretLister (and, for the pod controller, a SecretInformer) reading with client.
type secretsByName struct{ client kubernetes.Interface }

func (s secretsByName) List(labels.Selector) ([]*corev1.Secret, error) { return nil, errNoList }
func (s secretsByName) Secrets(ns string) corev1listers.SecretNamespaceLister {
	return byName[*corev1.Secret]{get: s.client.CoreV1().Secrets(ns).Get}
}
func (s secretsByName) Lister() corev1listers.SecretLister { return s }

// Informer is nil: the pod controller only reads through Lister.
func (s secretsByName) Informer() cache.SharedIndexInformer { return nil }

// configMapsByName is a ConfigMapLister (and, for the pod controller, a ConfigMapInformer) reading with client.
type configMapsByName struct{ client kubernetes.Interface }

func (c configMapsByName) List(labels.Selector) ([]*corev1.ConfigMap, error) { return nil, errNoList }
func (c configMapsByName) ConfigMaps(ns string) corev1listers.ConfigMapNamespaceLister {
	return byName[*corev1.ConfigMap]{get: c.client.CoreV1().ConfigMaps(ns).Get}
}
func (c configMapsByName) Lister() corev1listers.ConfigMapLister { return c }

// Informer is nil: the pod controller only reads through Lister.
func (c configMapsByName) Informer() cache.SharedIndexInformer { return nil }

var (
	_ corev1informers.SecretInformer    = secretsByName{}
	_ corev1informers.ConfigMapInformer = configMapsByName{}
)

// withoutSecretInformers is the client given to virtual-kubelet's nodeutil, which builds informers over all
// Secrets and ConfigMaps of the cluster and hands them to the pod controller. Our pod controller reads through
// secretsByName and configMapsByName instead (WithPodControllerConfigOverrides); nodeutil's informers still start,
// and through this client they list nothing and watch nothing, so they send no list or watch to the API server.
type withoutSecretInformers struct{ kubernetes.Interface }

func (c withoutSecretInformers) CoreV1() typedcorev1.CoreV1Interface {
	return coreWithoutSecretInformers{c.Interface.CoreV1()}
}

type coreWithoutSecretInformers struct{ typedcorev1.CoreV1Interface }

func (c coreWithoutSecretInformers) Secrets(ns string) typedcorev1.SecretInterface {
	return noSecretList{c.CoreV1Interface.Secrets(ns)}
}

func (c coreWithoutSecretInformers) ConfigMaps(ns string) typedcorev1.ConfigMapInterface {
	return noConfigMapList{c.CoreV1Interface.ConfigMaps(ns)}
}

type noSecretList struct{ typedcorev1.SecretInterface }

func (noSecretList) List(context.Context, metav1.ListOptions) (*corev1.SecretList, error) {
	return &corev1.SecretList{}, nil
}
func (noSecretList) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return watch.NewFake(), nil
}

type noConfigMapList struct{ typedcorev1.ConfigMapInterface }

func (noConfigMapList) List(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error) {
	return &corev1.ConfigMapList{}, nil
}
func (noConfigMapList) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return watch.NewFake(), nil
}
