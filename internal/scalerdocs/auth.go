package scalerdocs

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/scalers"
)

// RenderAuth returns docs/auth.md: every source of TriggerAuthenticationSpec with its documentation (from the API
// type's comments), whether Tidal reads it or refuses it at admission (api/v1alpha1's NotSupportedYet table, the
// one the webhook and `tidalctl convert` use), the examples that use it, and per trigger type the keys it takes
// from a TriggerAuthentication (the struct tags).
func RenderAuth(reg *scalers.Registry, moduleDir string) ([]byte, error) {
	docs, err := specFieldDocs(filepath.Join(moduleDir, "api", "v1alpha1", "triggerauthentication_types.go"), "TriggerAuthenticationSpec")
	if err != nil {
		return nil, err
	}
	refused := map[string]string{}
	for _, u := range tidalv1alpha1.NotSupportedYet() {
		if u.Kind == tidalv1alpha1.KindTriggerAuthentication {
			refused[strings.TrimSuffix(u.Path, ".provider")] = u.Reason
		}
	}
	examples, err := filepath.Glob(filepath.Join(moduleDir, "examples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(examples)
	var b bytes.Buffer
	b.WriteString(strings.Replace(header, "scalers' package documentation and struct tags", "API types, the not-supported table and the scalers' struct tags", 1))
	b.WriteString("# Authentication\n\nA trigger takes its credentials and other parameters from a `TriggerAuthentication` (or, for every namespace, a\n`ClusterTriggerAuthentication`, whose Secrets and ConfigMaps live in the operator's namespace) named in its\n`authenticationRef`. Values read this way are secrets: never logged, never in an event, a status or an error.\n\n")
	b.WriteString("## Sources\n\n| field | Tidal | what it does | examples |\n|---|---|---|---|\n")
	t := reflect.TypeFor[tidalv1alpha1.TriggerAuthenticationSpec]()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		path := "spec." + name
		status := "read"
		if reason, ok := refused[path]; ok {
			status = "refused at admission: " + reason
		}
		var ex []string
		for _, e := range examples {
			raw, err := os.ReadFile(e)
			if err != nil {
				return nil, err
			}
			if bytes.Contains(raw, []byte("\n  "+name+":")) {
				ex = append(ex, fmt.Sprintf("[`%s`](../examples/%s)", filepath.Base(e), filepath.Base(e)))
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", path, cell(status), cell(docs[f.Name]), strings.Join(ex, ", "))
	}
	b.WriteString("\nA parameter set by several sources takes the value of the last one in the order secretTargetRef,\n" +
		"configMapTargetRef, env, boundServiceAccountToken, oauth2, hashiCorpVault, azureKeyVault, gcpSecretManager,\n" +
		"awsSecretManager.\n\n" +
		"### External secret stores\n\nValues read from a store are kept for `--secret-store-ttl` (operator and metrics adapter, default 5m)\n" +
		"per authentication and resourceVersion: they are read again after half of it. When that read fails, the last\n" +
		"values keep being used until the TTL is over, and the ScaledObject's `Ready` condition is `False` with reason\n" +
		"`SecretStoreDegraded`, naming the field and the store's error (HTTP status, path; never a value); a\n" +
		"`SecretStoreDegraded` event is recorded (ScaledJobs: the event only). Once the TTL is over without a successful\n" +
		"read, the trigger fails like any authentication that cannot be resolved (`TriggerInvalid`) until the store\n" +
		"answers again. Running scalers keep the values they were built with until the object's generation changes. The\n" +
		"admission webhook never reads a store.\n")
	b.WriteString("\n## Keys each trigger type reads from an authentication\n\nA key listed here may come from the authentication's parameters; most may also be given in the trigger's\nmetadata, or through `<key>FromEnv` from the scale target's container (see each type's page).\n\n| trigger type | keys |\n|---|---|\n")
	for _, typ := range reg.Types() {
		meta, ok := reg.Metadata(typ)
		if !ok {
			return nil, fmt.Errorf("%s: no metadata description registered", typ)
		}
		var keys []string
		for _, f := range scalers.Fields(meta) {
			if f.Secret() {
				keys = append(keys, "`"+f.Name+"`")
			}
		}
		if len(keys) == 0 {
			keys = []string{"none"}
		}
		fmt.Fprintf(&b, "| [`%s`](scalers/%s.md) | %s |\n", typ, typ, strings.Join(keys, ", "))
	}
	return b.Bytes(), nil
}

// specFieldDocs reads the doc comments of struct typeName's fields in file, without kubebuilder markers.
func specFieldDocs(file, typeName string) (map[string]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != typeName {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			if fld.Doc == nil || len(fld.Names) == 0 {
				continue
			}
			var lines []string
			for _, l := range strings.Split(fld.Doc.Text(), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "+") {
					lines = append(lines, l)
				}
			}
			out[fld.Names[0].Name] = strings.Join(lines, " ")
		}
		return false
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no documented fields of %s", file, typeName)
	}
	return out, nil
}

// WriteAuth renders docs/auth.md to path.
func WriteAuth(reg *scalers.Registry, moduleDir, path string) error {
	b, err := RenderAuth(reg, moduleDir)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
