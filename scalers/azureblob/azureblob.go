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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/gobwas/glob"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/azure"
	"github.com/tidalscale/tidal/scalers/onemetric"
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
	onemetric.Base
	meta   Metadata
	client *container.Client
}

// Register adds the azure-blob scaler to r.
func Register(r *scalers.Registry) {
	r.Register(New, TriggerType)
	r.Describe(Metadata{}, TriggerType)
}

// New parses the trigger and builds the container client; nothing is sent until Sample. The one External metric
// targets blobCount; the trigger is active when the count exceeds activationBlobCount.
func New(_ context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	var meta Metadata
	if err := scalers.Parse(cfg, &meta); err != nil {
		return nil, err
	}
	client, release, err := azure.NewClient(cfg, TriggerType, &meta.Storage, meta.BlobContainerName,
		container.NewClientFromConnectionString, container.NewClient,
		func(o policy.ClientOptions) *container.ClientOptions {
			return &container.ClientOptions{ClientOptions: o}
		})
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, client: client}
	s.Base = onemetric.New(cfg, cfg.MetricName("azure-blob", meta.BlobContainerName), float64(meta.BlobCount), float64(meta.ActivationBlobCount), s.count)
	s.Source, s.Release = fmt.Sprintf("container %q: listing blobs", meta.BlobContainerName), release
	return s, nil
}

// count counts the blobs.
func (s *Scaler) count(ctx context.Context) (float64, error) {
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
				return 0, azure.Describe(err)
			}
			for _, b := range page.Segment.BlobItems {
				if s.meta.glob == nil || (b.Name != nil && s.meta.glob.Match(*b.Name)) {
					n++
				}
			}
		}
		return float64(n), nil
	}
	pager := s.client.NewListBlobsHierarchyPager(s.meta.BlobDelimiter, &container.ListBlobsHierarchyOptions{Prefix: prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, azure.Describe(err)
		}
		n += int64(len(page.Segment.BlobItems))
	}
	return float64(n), nil
}
