package scalers

import (
	"context"
	"fmt"
	"reflect"
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
	checks   map[string]Check
	metadata map[string]reflect.Type
	shared   *Shared
}

// NewRegistry returns an empty registry whose scalers share clients through one Shared.
func NewRegistry() *Registry {
	return &Registry{builders: map[string]Builder{}, checks: map[string]Check{}, metadata: map[string]reflect.Type{}, shared: NewShared()}
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

// Check validates a trigger's configuration without doing any I/O: no connection, no file read. Admission uses
// it, so that writing an object never makes the operator dial an address of the author's choosing.
type Check func(cfg *TriggerConfig) error

// RegisterCheck sets the offline check of trigger types whose builder does I/O (the external scaler asks its
// server for metric specs). Types without one are checked by building and closing the scaler, which the Builder
// contract keeps offline.
func (r *Registry) RegisterCheck(c Check, types ...string) {
	for _, t := range types {
		r.checks[t] = c
	}
}

// Check validates one trigger offline: its metadata, auth parameters and metric type.
func (r *Registry) Check(ctx context.Context, cfg TriggerConfig) error {
	if _, ok := r.builders[cfg.Type]; !ok {
		return fmt.Errorf("trigger #%d: type %q: %w (known: %s)", cfg.Index, cfg.Type, ErrUnknownType, strings.Join(r.Types(), ", "))
	}
	cfg.Normalize()
	if c, ok := r.checks[cfg.Type]; ok {
		return c(&cfg)
	}
	cfg.Shared = nil // a private client, closed at once
	s, err := r.New(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Close(ctx)
}

// Describe records the metadata struct a trigger type parses (meta is a value or pointer of that struct), so that
// tools and tests can list its fields (see Fields and Metadata) without building a scaler.
func (r *Registry) Describe(meta any, types ...string) {
	t := reflect.TypeOf(meta)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for _, typ := range types {
		r.metadata[typ] = t
	}
}

// Metadata returns a new zero value (a pointer) of the metadata struct of a trigger type, or false when the type
// registered no description.
func (r *Registry) Metadata(triggerType string) (any, bool) {
	t, ok := r.metadata[triggerType]
	if !ok {
		return nil, false
	}
	return reflect.New(t).Interface(), true
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
