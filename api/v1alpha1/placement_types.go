package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PlacementPolicy says where a scale-up's pods go while the nodes for them are being provisioned.
// +kubebuilder:validation:Enum=waitForNodes;burstToVirtual;auto
type PlacementPolicy string

const (
	// PlacementWaitForNodes: the pods stay Pending until real nodes are Ready (Tidal adds nothing).
	PlacementWaitForNodes PlacementPolicy = "waitForNodes"
	// PlacementBurstToVirtual: pods that no real node can take now run on the virtual node, and the virtual
	// node's backfill moves them to real nodes once those are Ready.
	PlacementBurstToVirtual PlacementPolicy = "burstToVirtual"
	// PlacementAuto: burst when the node group's measured provision time would miss maxPendingSeconds and the
	// virtual node's measured pod start would not; among the options that meet the target, the cheaper one.
	PlacementAuto PlacementPolicy = "auto"
)

// MaxPlacementPendingSeconds bounds placement.maxPendingSeconds (an hour: any longer is waitForNodes).
const MaxPlacementPendingSeconds = 3600

func placementPolicies() []string {
	return []string{string(PlacementWaitForNodes), string(PlacementBurstToVirtual), string(PlacementAuto)}
}

// Placement is a workload's burst-or-wait policy for pods that need new nodes. Tidal only.
//
// +kubebuilder:validation:XValidation:rule="self.policy != 'auto' || has(self.maxPendingSeconds)",message="placement.maxPendingSeconds is required when placement.policy is auto",fieldPath=".maxPendingSeconds"
type Placement struct {
	// Policy is waitForNodes, burstToVirtual or auto.
	Policy PlacementPolicy `json:"policy"`
	// MaxPendingSeconds is the latency target of auto: the longest a pod should wait for a node, in seconds
	// (1..3600).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	MaxPendingSeconds *int32 `json:"maxPendingSeconds,omitempty"`
}

// Validate checks p, naming the field under path.
func (p *Placement) Validate(path *field.Path) field.ErrorList {
	return p.validate(path.Child("policy"), path.Child("maxPendingSeconds"))
}

// validate checks p, naming its policy and its latency target by the paths given (spec fields or annotations).
func (p *Placement) validate(policy, maxPending *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	var errs field.ErrorList
	if !oneOf(string(p.Policy), placementPolicies()) {
		errs = append(errs, field.NotSupported(policy, p.Policy, placementPolicies()))
	}
	if m := p.MaxPendingSeconds; m != nil && (*m < 1 || *m > MaxPlacementPendingSeconds) {
		errs = append(errs, field.Invalid(maxPending, *m,
			fmt.Sprintf("must be between 1 and %d seconds", MaxPlacementPendingSeconds)))
	}
	if p.Policy == PlacementAuto && p.MaxPendingSeconds == nil {
		errs = append(errs, field.Required(maxPending, "required when policy is auto"))
	}
	return errs
}

// PlacementDecisionType is what the node autoscaler decided for a CapacityRequest's pods.
type PlacementDecisionType string

const (
	// PlacementDecisionWait: the pods wait for real nodes.
	PlacementDecisionWait PlacementDecisionType = "Wait"
	// PlacementDecisionBurst: pods no real node can take now get the virtual node's toleration.
	PlacementDecisionBurst PlacementDecisionType = "Burst"
)

// PlacementDecision is the node autoscaler's burst-or-wait decision for one CapacityRequest and its inputs.
type PlacementDecision struct {
	// Decision is Wait or Burst.
	Decision PlacementDecisionType `json:"decision"`
	// Reason explains the decision in one sentence.
	Reason string `json:"reason"`
	// DecidedAt is when the decision was made (it changes only when the decision does).
	DecidedAt metav1.MicroTime `json:"decidedAt"`
	// NodeGroup is the group the pods' nodes come from.
	// +optional
	NodeGroup string `json:"nodeGroup,omitempty"`
	// NodeProvisionTime is the group's measured provision time (status.provisionTime.estimate); unset when not
	// measured yet.
	// +optional
	NodeProvisionTime *metav1.Duration `json:"nodeProvisionTime,omitempty"`
	// NodePricePerCPUHour is the group's price per hour divided by its node CPUs; empty when the group has none.
	// +optional
	NodePricePerCPUHour string `json:"nodePricePerCPUHour,omitempty"`
	// VirtualNode is the virtual node the pods may burst to; empty when there is none.
	// +optional
	VirtualNode string `json:"virtualNode,omitempty"`
	// VirtualPodStartTime is the virtual node's measured pod start (scheduled → Ready), or its
	// tidal.dev/pod-start-seconds annotation before any measurement.
	// +optional
	VirtualPodStartTime *metav1.Duration `json:"virtualPodStartTime,omitempty"`
	// VirtualPricePerCPUHour is the virtual node's tidal.dev/price-per-cpu-hour annotation.
	// +optional
	VirtualPricePerCPUHour string `json:"virtualPricePerCPUHour,omitempty"`
	// BurstPods counts the pods given the virtual node's toleration under this decision.
	// +optional
	BurstPods int32 `json:"burstPods,omitempty"`
}

// ProvisionTimeEstimate is a node group's measured provision time: node requested → node Ready, as an
// exponentially weighted moving average (weight 0.3 on the newest sample).
type ProvisionTimeEstimate struct {
	// Estimate is the moving average.
	Estimate metav1.Duration `json:"estimate"`
	// Last is the newest sample.
	Last metav1.Duration `json:"last"`
	// Samples counts the nodes measured.
	Samples int32 `json:"samples"`
	// LastObservedTime is when the newest sample's node became Ready.
	// +optional
	LastObservedTime *metav1.Time `json:"lastObservedTime,omitempty"`
}

// Annotations on a virtual node Node that feed placement decisions.
const (
	// AnnotationVirtualPricePerCPUHour is the virtual node's price per CPU-hour (a decimal, the same currency
	// as NodeGroup spec.pricePerHour).
	AnnotationVirtualPricePerCPUHour = "tidal.dev/price-per-cpu-hour"
	// AnnotationVirtualPodStartSeconds is the expected pod start on the virtual node before the node autoscaler
	// has measured one.
	AnnotationVirtualPodStartSeconds = "tidal.dev/pod-start-seconds"
)

// ScaleUpTrace is the operator's side of a scale-up's chain: the sample that called for it, the decision, the
// CapacityRequest and the /scale write. Node and pod times are read from the cluster (tidalctl status --timeline).
type ScaleUpTrace struct {
	// SampleTime is when the trigger sample that asked for more replicas was taken.
	SampleTime metav1.MicroTime `json:"sampleTime"`
	// DecisionTime is when the operator decided the new replica count.
	DecisionTime metav1.MicroTime `json:"decisionTime"`
	// FromReplicas is the replica count before the scale-up.
	FromReplicas int32 `json:"fromReplicas"`
	// ToReplicas is the replica count decided.
	ToReplicas int32 `json:"toReplicas"`
	// CapacityRequest is the name of the CapacityRequest written ahead of the pods; empty when none was.
	// +optional
	CapacityRequest string `json:"capacityRequest,omitempty"`
	// CapacityRequestTime is when it was written.
	// +optional
	CapacityRequestTime *metav1.MicroTime `json:"capacityRequestTime,omitempty"`
	// ScaleTime is when /scale was written.
	// +optional
	ScaleTime *metav1.MicroTime `json:"scaleTime,omitempty"`
}
