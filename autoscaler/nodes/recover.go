package nodes

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/tidalscale/tidal/autoscaler/nodes/provider"
	"github.com/tidalscale/tidal/autoscaler/nodes/scaledown"
	"github.com/tidalscale/tidal/autoscaler/nodes/template"
)

// recoverAfterRestart settles what a previous run left half-done, before the first loop, like
// cluster-autoscaler's start-up clean-up of its ToBeDeleted taints: providers settle their own operations
// (provider.Recoverer), then every node of a managed group that carries the to-be-deleted taint and whose
// removal is not under way gets the taint and the autoscaler's cordon back off. Only managed groups' nodes are
// touched: another autoscaler's drains (another selector) are left alone.
func (a *Autoscaler) recoverAfterRestart(ctx context.Context) error {
	ngs, err := a.tidalInformers.Tidal().V1alpha1().NodeGroups().Lister().List(a.cfg.NodeGroupSelector)
	if err != nil {
		return fmt.Errorf("list node groups: %w", err)
	}
	if len(ngs) == 0 {
		return nil
	}
	names := make([]string, 0, len(ngs))
	deleting := map[string]bool{}
	var errs []error
	for _, ng := range ngs {
		names = append(names, ng.Name)
		prov, ok := a.opts.Providers[ng.Spec.ProviderRef.Name]
		if !ok || len(ng.Validate()) > 0 {
			continue // observe reports it
		}
		if r, ok := prov.(provider.Recoverer); ok {
			gone, err := r.Recover(ctx, ng)
			if err != nil {
				errs = append(errs, fmt.Errorf("node group %q: %w", ng.Name, err))
				continue
			}
			for _, n := range gone {
				deleting[n] = true
			}
		}
		instances, err := prov.Instances(ctx, ng)
		if err != nil {
			errs = append(errs, fmt.Errorf("node group %q: instances: %w", ng.Name, err))
			continue
		}
		for _, in := range instances {
			if in.State == provider.InstanceDeleting && in.NodeName != "" {
				deleting[in.NodeName] = true
			}
		}
	}
	inGroups, err := labels.NewRequirement(template.LabelNodeGroup, selection.In, names)
	if err != nil {
		return fmt.Errorf("node group selector: %w", err)
	}
	nodes, err := a.informers.Core().V1().Nodes().Lister().List(labels.NewSelector().Add(*inGroups))
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.DeletionTimestamp != nil || deleting[n.Name] || !scaledown.HasTaint(n) {
			continue
		}
		if err := scaledown.RemoveTaint(ctx, a.opts.Client, n.Name); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("node %q: remove %s taint: %w", n.Name, template.TaintToBeDeleted, err))
			continue
		}
		a.log.Info("removed the to-be-deleted taint and cordon a previous run left", zap.String("node", n.Name),
			zap.String("nodeGroup", n.Labels[template.LabelNodeGroup]))
	}
	return errors.Join(errs...)
}
