// Package core is Tidal's scaling math: everything that turns observed inputs into a replica count, with no
// Kubernetes client and no clock. The operator calls it (Decide for ScaledObjects: every replica count in mode
// direct, 0↔1 in mode hpa; DecideJobs for ScaledJobs), and `tidalctl explain` re-runs Decide through the same
// spec-to-input mapping (autoscaler/coreinput), so an explanation shows the operator's own answer.
//
// The package has two layers:
//
//   - ComputeHPA reproduces the Kubernetes v1.37 HorizontalPodAutoscaler controller
//     (pkg/controller/podautoscaler: replica_calculator.go and horizontal.go): Resource (Utilization and
//     AverageValue), ContainerResource, Pods, Object (Value, AverageValue) and External (Value, AverageValue)
//     metrics, the default and per-HPA configurable tolerances, unready and missing pods, the CPU initialization
//     period and initial readiness delay, several metrics resolved to the largest proposal, min/max clamps,
//     behaviors (policies, selectPolicy, stabilization windows) and the legacy normalization used when behavior is
//     nil. The controller's in-memory recommendation and scale-event logs are a History value the caller owns.
//
//   - Decide composes that calculator with KEDA's ScaledObject semantics: activation (0 <-> minReplicaCount or
//     idleReplicaCount), cooldownPeriod and initialCooldownPeriod, pausing, fallback after repeated trigger errors,
//     and scalingModifiers formulas (github.com/expr-lang/expr, as KEDA does).
//
// Inputs are plain values, time is an argument (now time.Time), and all state that must survive between decisions
// (last active time, trigger failure counts, recommendation history, scale events) travels in a JSON-serialisable
// State that the caller persists. Functions never panic on bad input; they return an error naming the field.
//
// Metric quantities inside the HPA calculator are milli-units (resource.Quantity.MilliValue), exactly as the
// upstream controller works with them. Decide takes float64 trigger values and converts them the way KEDA's
// metrics adapter does (truncating to milli-units).
package core
