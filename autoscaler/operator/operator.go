// Package operator holds what the operator's controllers share: their Prometheus metrics, the logger carried in
// ctx and the field manager of every write.
package operator

// FieldManager is the manager name on every write the operator makes.
const FieldManager = "tidal-operator"
