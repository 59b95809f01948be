// Package status summarizes ScaledObjects for `tidalctl status`: one row per object with its target, replica
// bounds and counts, activity and the last sample of each trigger.
package status

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/cmd/tidalctl/tablefmt"
)

// Row is one ScaledObject as `tidalctl status` shows it; it is also the JSON/YAML output.
type Row struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Target is "Kind/name" of the scale target.
	Target string `json:"target"`
	Mode   string `json:"mode"`
	Min    int32  `json:"minReplicas"`
	Max    int32  `json:"maxReplicas"`
	// Current and Desired are nil until the operator has reconciled the object.
	Current *int32 `json:"currentReplicas,omitempty"`
	Desired *int32 `json:"desiredReplicas,omitempty"`
	// Ready, Active, Fallback and Paused are the condition statuses ("True", "False", "Unknown" or "").
	Ready      string                        `json:"ready"`
	Active     string                        `json:"active"`
	Fallback   string                        `json:"fallback,omitempty"`
	Paused     string                        `json:"paused,omitempty"`
	LastActive *metav1.Time                  `json:"lastActiveTime,omitempty"`
	Triggers   []tidalv1alpha1.TriggerStatus `json:"triggers"`
}

// Rows builds the rows of a list of ScaledObjects, sorted by namespace and name. Triggers the operator has not
// sampled yet appear with their spec name and type only.
func Rows(items []tidalv1alpha1.ScaledObject) []Row {
	rows := make([]Row, 0, len(items))
	for i := range items {
		rows = append(rows, rowOf(&items[i]))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Namespace != rows[j].Namespace {
			return rows[i].Namespace < rows[j].Namespace
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

func rowOf(so *tidalv1alpha1.ScaledObject) Row {
	ref := so.Spec.ScaleTargetRef
	kind := ref.Kind
	if kind == "" {
		kind = tidalv1alpha1.DefaultScaleTargetKind
	}
	mode := string(so.Spec.Mode)
	if mode == "" {
		mode = string(tidalv1alpha1.ScalingModeDirect)
	}
	r := Row{
		Namespace: so.Namespace, Name: so.Name, Target: kind + "/" + ref.Name, Mode: mode,
		Min:        so.Spec.GetMinReplicaCount(),
		Max:        so.Spec.GetMaxReplicaCount(),
		Current:    so.Status.CurrentReplicas,
		Desired:    so.Status.DesiredReplicas,
		Ready:      condition(so, tidalv1alpha1.ConditionReady),
		Active:     condition(so, tidalv1alpha1.ConditionActive),
		Fallback:   condition(so, tidalv1alpha1.ConditionFallback),
		Paused:     condition(so, tidalv1alpha1.ConditionPaused),
		LastActive: so.Status.LastActiveTime,
	}
	byName := map[string]tidalv1alpha1.TriggerStatus{}
	for _, ts := range so.Status.Triggers {
		byName[ts.Name] = ts
	}
	for i, t := range so.Spec.Triggers {
		name := TriggerName(t, i)
		ts, ok := byName[name]
		if !ok {
			ts = tidalv1alpha1.TriggerStatus{Name: name, Type: t.Type}
		}
		r.Triggers = append(r.Triggers, ts)
	}
	return r
}

// TriggerName is the name the operator reports a trigger under: spec.triggers[i].name, or "s<i>-<type>".
func TriggerName(t tidalv1alpha1.ScaleTriggers, i int) string {
	if t.Name != "" {
		return t.Name
	}
	return "s" + strconv.Itoa(i) + "-" + t.Type
}

func condition(so *tidalv1alpha1.ScaledObject, typ string) string {
	if c := meta.FindStatusCondition(so.Status.Conditions, typ); c != nil {
		return string(c.Status)
	}
	return ""
}

// TableOptions configures WriteTable.
type TableOptions struct {
	// AllNamespaces adds a NAMESPACE column.
	AllNamespaces bool
	// Now is the reference for ages ("42s").
	Now time.Time
}

// WriteTable writes rows kubectl-style: one line per trigger, the object's columns on its first trigger's line.
func WriteTable(w io.Writer, rows []Row, opts TableOptions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"NAME", "TARGET", "MODE", "MIN", "MAX", "CURRENT", "DESIRED", "READY", "ACTIVE", "LAST ACTIVE",
		"TRIGGER", "TYPE", "VALUE", "TRIGGER ACTIVE", "SAMPLED", "ERROR"}
	if opts.AllNamespaces {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		obj := []string{r.Name, r.Target, r.Mode, strconv.Itoa(int(r.Min)), strconv.Itoa(int(r.Max)),
			tablefmt.Int(r.Current), tablefmt.Int(r.Desired), tablefmt.Dash(r.Ready), tablefmt.Dash(r.Active), tablefmt.Age(r.LastActive, opts.Now)}
		if opts.AllNamespaces {
			obj = append([]string{r.Namespace}, obj...)
		}
		blank := make([]string, len(obj))
		triggers := r.Triggers
		if len(triggers) == 0 {
			triggers = []tidalv1alpha1.TriggerStatus{{}}
		}
		for i, t := range triggers {
			cols := blank
			if i == 0 {
				cols = obj
			}
			trig := []string{tablefmt.Dash(t.Name), tablefmt.Dash(t.Type), tablefmt.Dash(t.Value), triggerActive(t), tablefmt.Age(t.LastSampleTime, opts.Now),
				tablefmt.OneLine(t.Error)}
			fmt.Fprintln(tw, strings.Join(append(append([]string{}, cols...), trig...), "\t"))
		}
	}
	return tw.Flush()
}

func triggerActive(t tidalv1alpha1.TriggerStatus) string {
	switch {
	case t.LastSampleTime == nil && t.Error == "" && t.Value == "":
		return "-"
	case t.Active:
		return "true"
	}
	return "false"
}
