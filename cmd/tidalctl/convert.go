package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tidalscale/tidal/cmd/tidalctl/convert"
	"github.com/tidalscale/tidal/scalers/registry"
)

func newConvertCmd(g *globalFlags, s streams) *cobra.Command {
	var (
		files  []string
		to     string
		strict bool
	)
	cmd := &cobra.Command{
		Use:   "convert -f FILE [-f FILE...] [--to tidal|keda]",
		Short: "Convert KEDA manifests (keda.sh/v1alpha1) to Tidal (tidal.dev/v1alpha1), or back with --to keda",
		Long: "Converts ScaledObjects, ScaledJobs, TriggerAuthentications and ClusterTriggerAuthentications; other " +
			"objects pass through. Comments and key order are kept. Every field Tidal cannot carry is removed and " +
			"reported on stderr; --strict turns any warning into an error. -f - reads stdin.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usageError{errors.New("convert: -f is required (a file, or - for stdin)")}
			}
			if g.output == outputTable {
				g.output = outputYAML // manifests have no table form; YAML is the default
			}
			dir := convert.Direction(to)
			if dir != convert.ToTidal && dir != convert.ToKEDA {
				return usageError{fmt.Errorf("--to: want tidal or keda, got %q", to)}
			}
			reg := registry.New()
			var all convert.Result
			for _, f := range files {
				res, err := convertFile(s.in, f, convert.Options{To: dir, KnownTriggerType: reg.Has})
				if err != nil {
					return err
				}
				all.Documents = append(all.Documents, res.Documents...)
				all.Converted += res.Converted
				for _, w := range res.Warnings {
					fmt.Fprintf(s.err, "warning: %s: %s\n", f, w)
				}
				all.Warnings = append(all.Warnings, res.Warnings...)
			}
			if strict && len(all.Warnings) > 0 {
				return fmt.Errorf("convert: %d warnings with --strict; nothing written", len(all.Warnings))
			}
			if g.output == outputYAML {
				return all.WriteYAML(s.out)
			}
			objs, err := all.Objects()
			if err != nil {
				return err
			}
			if len(objs) == 1 {
				return printStructured(s.out, outputJSON, objs[0])
			}
			return printStructured(s.out, outputJSON, map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file to convert; - reads stdin (repeatable)")
	cmd.Flags().StringVar(&to, "to", string(convert.ToTidal), "target API: tidal or keda")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail instead of warning when a field cannot be carried over")
	return cmd
}

func convertFile(stdin io.Reader, name string, opts convert.Options) (convert.Result, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return convert.Result{}, fmt.Errorf("-f %s: %w", name, errors.Unwrap(err))
		}
		defer f.Close()
		r = f
	}
	res, err := convert.Convert(r, opts)
	if err != nil {
		return convert.Result{}, fmt.Errorf("-f %s: %w", name, err)
	}
	return res, nil
}
