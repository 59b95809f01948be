package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
)

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// globalFlags are the kubectl-style flags every command has.
type globalFlags struct {
	kubeconfig string
	context    string
	namespace  string
	output     string
}

func newRoot(s streams) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "tidalctl",
		Short:         "Inspect and migrate Tidal autoscaling",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case outputTable, outputJSON, outputYAML:
				return nil
			}
			return usageError{fmt.Errorf("--output: want table, json or yaml, got %q", g.output)}
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	pf.StringVar(&g.context, "context", "", "the kubeconfig context to use")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "the namespace (default: the context's namespace)")
	pf.StringVarP(&g.output, "output", "o", outputTable, "output format: table, json or yaml")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newStatusCmd(g, s), newExplainCmd(g, s), newConvertCmd(g, s), newVersionCmd(g, s), newDevCmd(s))
	return root
}

// clientConfig loads the kubeconfig the way kubectl does: --kubeconfig, else $KUBECONFIG, else ~/.kube/config,
// with --context and -n applied.
func (g *globalFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: g.context}
	overrides.Context.Namespace = g.namespace
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// tidal returns a Tidal clientset and the effective namespace.
func (g *globalFlags) tidal() (tidalclient.Interface, string, error) {
	cc := g.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: namespace: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "tidalctl"
	c, err := tidalclient.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	return c, ns, nil
}

// printStructured writes v as indented JSON or as YAML.
func printStructured(w io.Writer, format string, v any) error {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if format == outputJSON {
		_, err = fmt.Fprintf(w, "%s\n", js)
		return err
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(y)
	return err
}
