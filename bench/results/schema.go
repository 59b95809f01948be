// Package results holds the JSON schema of benchmark results (result.schema.json). Result files written here by
// `tidal-bench run` are not committed; see README.md.
package results

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed result.schema.json
var schemaJSON []byte

// SchemaURL is the schema's $id.
const SchemaURL = "https://tidal.dev/schemas/bench-result-v1.json"

// Schema returns a copy of result.schema.json.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// Validate checks a result document (JSON) against the schema.
func Validate(doc []byte) error {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return fmt.Errorf("result schema: %w", err)
	}
	if err := c.AddResource(SchemaURL, sch); err != nil {
		return fmt.Errorf("result schema: %w", err)
	}
	compiled, err := c.Compile(SchemaURL)
	if err != nil {
		return fmt.Errorf("result schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("result document: %w", err)
	}
	if err := compiled.Validate(inst); err != nil {
		return fmt.Errorf("result document: %w", err)
	}
	return nil
}
