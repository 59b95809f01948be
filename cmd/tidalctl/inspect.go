package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tidalclient "github.com/tidalscale/tidal/api/client/clientset/versioned"
	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/capacity"
	"github.com/tidalscale/tidal/cmd/tidalctl/explain"
	"github.com/tidalscale/tidal/cmd/tidalctl/status"
	"github.com/tidalscale/tidal/scalers/registry"
)

func newStatusCmd(g *globalFlags, s streams) *cobra.Command {
	var all, timeline bool
	cmd := &cobra.Command{
		Use:   "status [NAME...]",
		Short: "Show ScaledObjects: target, replicas, activity and each trigger's last sample",
		RunE: func(cmd *cobra.Command, names []string) error {
			if all && g.namespace != "" {
				return usageError{errors.New("--all-namespaces and --namespace are mutually exclusive")}
			}
			if timeline && (len(names) != 1 || all) {
				return usageError{errors.New("--timeline: want exactly one ScaledObject name (and no --all-namespaces)")}
			}
			client, ns, err := g.tidal()
			if err != nil {
				return err
			}
			if timeline {
				return g.timeline(cmd.Context(), s, client, ns, names[0])
			}
			if all {
				ns = metav1.NamespaceAll
			}
			list, err := client.TidalV1alpha1().ScaledObjects(ns).List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list ScaledObjects in %s: %w", nsName(ns), err)
			}
			items := list.Items
			if len(names) > 0 {
				items = slices.DeleteFunc(items, func(so tidalv1alpha1.ScaledObject) bool { return !slices.Contains(names, so.Name) })
				for _, n := range names {
					if !slices.ContainsFunc(items, func(so tidalv1alpha1.ScaledObject) bool { return so.Name == n }) {
						return fmt.Errorf("ScaledObject %q not found in %s", n, nsName(ns))
					}
				}
			}
			rows := status.Rows(items)
			if g.output != outputTable {
				return printStructured(s.out, g.output, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(s.err, "No ScaledObjects found in %s.\n", nsName(ns))
				return nil
			}
			return status.WriteTable(s.out, rows, status.TableOptions{AllNamespaces: all, Now: s.now()})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list ScaledObjects in every namespace")
	cmd.Flags().BoolVar(&timeline, "timeline", false, "show the chain of the object's last scale-up with timestamps: sample → decision → capacity request → placement → nodes → pods Running")
	return cmd
}

// timeline prints `status --timeline NAME`.
func (g *globalFlags) timeline(ctx context.Context, s streams, client tidalclient.Interface, ns, name string) error {
	so, err := client.TidalV1alpha1().ScaledObjects(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("ScaledObject %q not found in %s", name, nsName(ns))
	}
	if err != nil {
		return fmt.Errorf("get ScaledObject %s/%s: %w", ns, name, err)
	}
	cr := capacityRequest(ctx, client, so)
	cfg, err := g.clientConfig().ClientConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	var pods []corev1.Pod
	if cr != nil {
		sel, err := metav1.LabelSelectorAsSelector(&cr.Spec.Selector)
		if err != nil {
			return fmt.Errorf("CapacityRequest %s spec.selector: %w", cr.Name, err)
		}
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return fmt.Errorf("list pods in %s: %w", nsName(ns), err)
		}
		pods = list.Items
	}
	events, err := status.Timeline(so, cr, nodes.Items, pods)
	if err != nil {
		return err
	}
	if g.output != outputTable {
		return printStructured(s.out, g.output, events)
	}
	return status.WriteTimeline(s.out, events)
}

// capacityRequest is the ScaledObject's CapacityRequest, nil when there is none (or it cannot be read).
func capacityRequest(ctx context.Context, client tidalclient.Interface, so *tidalv1alpha1.ScaledObject) *tidalv1alpha1.CapacityRequest {
	cr, err := client.TidalV1alpha1().CapacityRequests(so.Namespace).Get(ctx, capacity.Name("ScaledObject", so.Name), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return cr
}

func newExplainCmd(g *globalFlags, s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "explain NAME",
		Short: "Explain a ScaledObject's replica count: each trigger's sample, the core's proposal, the policies applied",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("explain: want exactly one ScaledObject name, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			client, ns, err := g.tidal()
			if err != nil {
				return err
			}
			so, err := client.TidalV1alpha1().ScaledObjects(ns).Get(cmd.Context(), args[0], metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("ScaledObject %q not found in %s", args[0], nsName(ns))
			}
			if err != nil {
				return fmt.Errorf("get ScaledObject %s/%s: %w", ns, args[0], err)
			}
			now := s.now()
			target := g.readTarget(cmd.Context(), so)
			rep, err := explain.Explain(cmd.Context(), so, explain.Options{Registry: registry.New(), Now: now,
				Env: target.env, TargetAnnotations: target.annotations, CapacityRequest: capacityRequest(cmd.Context(), client, so)})
			if err != nil {
				return err
			}
			if g.output != outputTable {
				return printStructured(s.out, g.output, rep)
			}
			return rep.WriteText(s.out, now)
		},
	}
}

// targetInfo is what explain reads of the scale target.
type targetInfo struct {
	// env is the literal environment of the target's container.
	env map[string]string
	// annotations are the target's own metadata.annotations (placement may be set there).
	annotations map[string]string
}

// readTarget reads a Deployment or StatefulSet target once: the literal environment of its container (the
// envSourceContainerName, else the first), so explain can build scalers configured with ...FromEnv keys, and its
// annotations, so explain can tell a placement set by annotation. Values from Secrets and ConfigMaps are not
// read. Any failure yields neither: explain then reports the target as unknown for those triggers, and shows
// only spec.placement.
func (g *globalFlags) readTarget(ctx context.Context, so *tidalv1alpha1.ScaledObject) targetInfo {
	cfg, err := g.clientConfig().ClientConfig()
	if err != nil {
		return targetInfo{}
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return targetInfo{}
	}
	ref := so.Spec.ScaleTargetRef
	if ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
		return targetInfo{}
	}
	var tmpl *corev1.PodTemplateSpec
	var annotations map[string]string
	switch ref.Kind {
	case "", "Deployment":
		d, err := kube.AppsV1().Deployments(so.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return targetInfo{}
		}
		tmpl, annotations = &d.Spec.Template, d.Annotations
	case "StatefulSet":
		st, err := kube.AppsV1().StatefulSets(so.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return targetInfo{}
		}
		tmpl, annotations = &st.Spec.Template, st.Annotations
	default:
		return targetInfo{}
	}
	env := map[string]string{}
	for i, c := range tmpl.Spec.Containers {
		if (ref.EnvSourceContainerName == "" && i == 0) || c.Name == ref.EnvSourceContainerName {
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					env[e.Name] = e.Value
				}
			}
		}
	}
	return targetInfo{env: env, annotations: annotations}
}

func nsName(ns string) string {
	if ns == metav1.NamespaceAll {
		return "any namespace"
	}
	return "namespace " + ns
}
