// Package testjson compares JSON documents by meaning in tests: Normalize decodes one generically (numbers kept
// exact) and drops nulls and empty objects, which Go's encoding adds for unset non-pointer structs
// (metadata.creationTimestamp, status), so that a round trip through Go types compares equal to its source.
package testjson

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Normalize decodes js and prunes its nulls and empty objects; it fails t when js is not JSON.
func Normalize(t testing.TB, js []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return prune(v)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			p := prune(val)
			if p == nil {
				continue
			}
			if m, ok := p.(map[string]any); ok && len(m) == 0 {
				continue
			}
			out[k] = p
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = prune(x[i])
		}
		return out
	}
	return v
}
