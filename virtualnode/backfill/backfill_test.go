package backfill

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReplacementFor(t *testing.T) {
	cases := []struct {
		name      string
		affinity  *corev1.Affinity
		wantTerms int
	}{
		{name: "no affinity", wantTerms: 1},
		{name: "two required terms each get the exclusion", wantTerms: 2, affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
				{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"vk"}}}},
			}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", labelPodTemplateHash: "abc"}},
				Spec:       corev1.PodSpec{Affinity: tc.affinity, Containers: []corev1.Container{{Name: "c", Image: "i"}}},
			}}}
			vp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-abc-1", Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "vk-1"}}
			p := replacementFor(vp, rs)
			if p.Annotations[AnnotationReplacementNode] != "vk-1" || rs.Spec.Template.Annotations != nil {
				t.Errorf("replacement annotations %v (template's %v): want the virtual node named, the template untouched", p.Annotations, rs.Spec.Template.Annotations)
			}
			if _, ok := p.Labels[labelPodTemplateHash]; ok {
				t.Error("replacement carries pod-template-hash: the ReplicaSet would adopt it at once")
			}
			if p.Labels["app"] != "web" || p.Labels[LabelReplacementFor] != "web-abc-1" {
				t.Errorf("labels = %v", p.Labels)
			}
			terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			if len(terms) != tc.wantTerms {
				t.Fatalf("terms = %d, want %d", len(terms), tc.wantTerms)
			}
			for i, term := range terms {
				last := term.MatchExpressions[len(term.MatchExpressions)-1]
				if last.Key != labelNodeType || last.Operator != corev1.NodeSelectorOpNotIn || last.Values[0] != nodeTypeVirtual {
					t.Errorf("term %d does not exclude virtual nodes: %+v", i, term)
				}
			}
			if rs.Spec.Template.Labels[labelPodTemplateHash] != "abc" || (tc.affinity != nil && len(tc.affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions) != 1) {
				t.Error("replacementFor modified the ReplicaSet's template")
			}
		})
	}
}

func TestNewNamesMissingFields(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New(Options{}) succeeded, want an error naming Client")
	}
}
