// Package azureblob is Tidal's Azure Blob Storage scaler: trigger type "azure-blob", with KEDA's metadata names,
// defaults and semantics. The metric is the number of blobs in a container:
//   - by default the blobs directly under blobPrefix (a "folder": blobPrefix + blobDelimiter), not in its
//     sub-folders;
//   - with recursive, every blob whose name starts with blobPrefix;
//   - with globPattern, every blob under blobPrefix whose full name matches the pattern (a leading "/" is
//     ignored, as blob names never start with one).
//
// Authentication: a storage connection string (authParams connection, or connectionFromEnv), or accountName
// (with cloud / endpointSuffix) and the workload identity of the Tidal pod.
package azureblob

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/gobwas/glob"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
)

// TriggerType is the trigger type this package registers.
const TriggerType = "azure-blob"

// Metadata is the azure-blob trigger's metadata, with KEDA's names and defaults.
type Metadata struct {
	BlobContainerName   string `tidal:"name=blobContainerName"`
	BlobCount           int64  `tidal:"name=blobCount,default=5,target"`
	ActivationBlobCount int64  `tidal:"name=activationBlobCount,default=0,range=0;"`
	BlobDelimiter       string `tidal:"name=blobDelimiter,default=/"`
	BlobPrefix          string `tidal:"name=blobPrefix,optional"`
	Recursive           bool   `tidal:"name=recursive,default=false"`
	GlobPattern         string `tidal:"name=globPattern,optional"`
	azure.Storage

	// prefix is the listing prefix: blobPrefix followed by the delimiter unless recursive.
	prefix string
	glob   glob.Glob
}

// Validate checks the container name, the glob pattern and the connection, and derives the listing prefix.
func (m *Metadata) Validate() error {
	var errs []error
	if m.BlobContainerName == "" {
		errs = append(errs, errors.New("blobContainerName: must not be empty"))
	}
	if m.Recursive {
		m.BlobDelimiter = ""
	}
	if m.GlobPattern != "" {
		g, err := glob.Compile(strings.TrimPrefix(m.GlobPattern, "/"))
		if err != nil {
			errs = append(errs, fmt.Errorf("globPattern: %q is not a valid glob pattern: %v", m.GlobPattern, err))
		}
		m.glob = g
	}
	m.prefix = m.BlobPrefix
	if m.prefix != "" && m.BlobDelimiter != "" {
		m.prefix += m.BlobDelimiter
	}
	if err := m.Resolve("blob"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Scaler counts the blobs of one container.
type Scaler struct {
	cfg        *scalers.TriggerConfig
	meta       Metadata
	metricName string
	client     *container.Client
	release    func() error
}

var _ scalers.Scaler = (*Scaler)(nil)

// Register adds the azure-blob scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and builds the container client; nothing is sent until Sample.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	client, release, err := azure.NewClient(cfg, TriggerType, &meta.Storage, meta.BlobContainerName,
		func(conn, name string, o policy.ClientOptions) (*container.Client, error) {
			return container.NewClientFromConnectionString(conn, name, &container.ClientOptions{ClientOptions: o})
		},
		func(url string, cred azcore.TokenCredential, o policy.ClientOptions) (*container.Client, error) {
			return container.NewClient(url, cred, &container.ClientOptions{ClientOptions: o})
		})
	if err != nil {
		return nil, err
	}
	return &Scaler{cfg: cfg, meta: meta, metricName: cfg.MetricName("azure-blob", meta.BlobContainerName), client: client, release: release}, nil
}

// MetricSpecs returns one External metric with blobCount as its target.
func (s *Scaler) MetricSpecs() []autoscalingv2.MetricSpec {
	return []autoscalingv2.MetricSpec{scalers.ExternalMetric(s.cfg, s.metricName, float64(s.meta.BlobCount))}
}

// Sample counts the blobs; the trigger is active when the count exceeds activationBlobCount.
func (s *Scaler) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	n, err := s.count(ctx)
	if err != nil {
		return nil, false, s.cfg.Errorf("container %q: listing blobs: %w", s.meta.BlobContainerName, azure.Describe(err))
	}
	return []scalers.Sample{{MetricName: s.metricName, Value: float64(n)}}, n > s.meta.ActivationBlobCount, nil
}

func (s *Scaler) count(ctx context.Context) (int64, error) {
	var prefix *string
	if s.meta.prefix != "" {
		prefix = &s.meta.prefix
	}
	var n int64
	if s.meta.glob != nil || s.meta.BlobDelimiter == "" {
		pager := s.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return 0, err
			}
			for _, b := range page.Segment.BlobItems {
				if s.meta.glob == nil || (b.Name != nil && s.meta.glob.Match(*b.Name)) {
					n++
				}
			}
		}
		return n, nil
	}
	pager := s.client.NewListBlobsHierarchyPager(s.meta.BlobDelimiter, &container.ListBlobsHierarchyOptions{Prefix: prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		n += int64(len(page.Segment.BlobItems))
	}
	return n, nil
}

// Close releases the shared transport.
func (s *Scaler) Close(context.Context) error { return s.release() }
