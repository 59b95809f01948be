package scalers

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Builder builds a scaler from a trigger. It parses and validates the metadata (returning an error that names
// the trigger and field), and may connect lazily: an unreachable source is a Sample error, not a build error,
// unless the scaler cannot work at all without the connection.
type Builder func(ctx context.Context, cfg *TriggerConfig) (Scaler, error)

// Registry maps trigger types to builders. Build one with scalers/registry.New() for every scaler Tidal ships.
type Registry struct {
	builders map[string]Builder
	shared   *Shared
}

// NewRegistry returns an empty registry whose scalers share clients through one Shared.
func NewRegistry() *Registry {
	return &Registry{builders: map[string]Builder{}, shared: NewShared()}
}

// Register adds a builder for one or more trigger types. Registering a type twice is a programming error.
func (r *Registry) Register(b Builder, types ...string) {
	for _, t := range types {
		if _, dup := r.builders[t]; dup {
			panic(fmt.Sprintf("scalers: trigger type %q registered twice", t))
		}
		r.builders[t] = b
	}
}

// Types lists the registered trigger types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.builders))
	for t := range r.builders {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a trigger type is known.
func (r *Registry) Has(triggerType string) bool {
	_, ok := r.builders[triggerType]
	return ok
}

// Shared returns the client store the registry's scalers use.
func (r *Registry) Shared() *Shared { return r.shared }

// New builds the scaler for one trigger.
func (r *Registry) New(ctx context.Context, cfg TriggerConfig) (Scaler, error) {
	b, ok := r.builders[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("trigger #%d: type %q: %w (known: %s)", cfg.Index, cfg.Type, ErrUnknownType, strings.Join(r.Types(), ", "))
	}
	if cfg.Shared == nil {
		cfg.Shared = r.shared
	}
	cfg.Normalize()
	return b(ctx, &cfg)
}
