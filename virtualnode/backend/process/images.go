package process

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/yaml"
)

// ImageResolver maps a container image to the command that stands in for it.
type ImageResolver interface {
	// Resolve returns the entrypoint argv for image and whether the image is mapped. An empty argv is a valid
	// mapping: the container must then give its own command.
	Resolve(image string) ([]string, bool)
}

// StaticImages is an ImageResolver from a fixed map. Keys are images with or without tag ("tidal/demo-worker"
// matches "tidal/demo-worker:1.2" and "tidal/demo-worker@sha256:...").
type StaticImages map[string][]string

// Resolve implements ImageResolver.
func (m StaticImages) Resolve(image string) ([]string, bool) {
	if argv, ok := m[image]; ok {
		return argv, true
	}
	argv, ok := m[repository(image)]
	return argv, ok
}

// repository strips the tag or digest from image.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if i := strings.LastIndex(image, ":"); i > slash {
		image = image[:i]
	}
	return image
}

// ImagesKey is the ConfigMap key that holds the image map (ConfigMap keys may not contain "/", images do).
const ImagesKey = "images.yaml"

// ParseImages parses the image map document: a YAML mapping from image to argv, each argv a list of strings or
// one command line split on spaces:
//
//	tidal/demo-worker: [tidal-demo-worker]
//	busybox: []            # the pod's command runs as given
//	python: "python3 -u"
func ParseImages(doc string) (StaticImages, error) {
	raw := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
		return nil, fmt.Errorf("image map: %w", err)
	}
	out := StaticImages{}
	for image, v := range raw {
		switch t := v.(type) {
		case string:
			out[image] = strings.Fields(t)
		case []any:
			argv := make([]string, 0, len(t))
			for i, a := range t {
				s, ok := a.(string)
				if !ok {
					return nil, fmt.Errorf("image map %q: argv[%d]: want string, got %T", image, i, a)
				}
				argv = append(argv, s)
			}
			out[image] = argv
		case nil:
			out[image] = nil
		default:
			return nil, fmt.Errorf("image map %q: want a list of strings or a command line, got %T", image, v)
		}
	}
	return out, nil
}

// ConfigMapGetter reads a ConfigMap (a lister's namespace-scoped Get, or a client).
type ConfigMapGetter func(namespace, name string) (*corev1.ConfigMap, error)

// ConfigMapImages resolves images from the ImagesKey document of a ConfigMap, re-parsed when the ConfigMap's
// resourceVersion changes, so the mapping can be edited while the node runs.
type ConfigMapImages struct {
	Get       ConfigMapGetter
	Namespace string
	Name      string
	OnError   func(error) // called when the ConfigMap is missing or invalid; may be nil

	mu      sync.Mutex
	version string
	images  StaticImages
}

// Resolve implements ImageResolver.
func (c *ConfigMapImages) Resolve(image string) ([]string, bool) {
	cm, err := c.Get(c.Namespace, c.Name)
	if err != nil {
		c.report(fmt.Errorf("image map ConfigMap %s/%s: %w", c.Namespace, c.Name, err))
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm.ResourceVersion != c.version || c.images == nil {
		imgs, err := ParseImages(cm.Data[ImagesKey])
		if err != nil {
			c.report(fmt.Errorf("image map ConfigMap %s/%s key %q: %w", c.Namespace, c.Name, ImagesKey, err))
			return nil, false
		}
		c.images, c.version = imgs, cm.ResourceVersion
	}
	return c.images.Resolve(image)
}

func (c *ConfigMapImages) report(err error) {
	if c.OnError != nil {
		c.OnError(err)
	}
}
