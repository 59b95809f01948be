package v1alpha1

import "testing"

// rollout.strategy wins over the deprecated rolloutStrategy; unset is default.
func TestGetRolloutStrategy(t *testing.T) {
	cases := []struct {
		name       string
		deprecated string
		rollout    *Rollout
		want       string
	}{
		{name: "unset", want: RolloutStrategyDefault},
		{name: "deprecated gradual", deprecated: "gradual", want: RolloutStrategyGradual},
		{name: "rollout gradual", rollout: &Rollout{Strategy: "gradual"}, want: RolloutStrategyGradual},
		{name: "rollout wins", deprecated: "gradual", rollout: &Rollout{Strategy: "default"}, want: RolloutStrategyDefault},
		{name: "empty rollout strategy falls back", deprecated: "gradual", rollout: &Rollout{PropagationPolicy: "foreground"}, want: RolloutStrategyGradual},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ScaledJobSpec{RolloutStrategy: tc.deprecated, Rollout: tc.rollout}
			if got := s.GetRolloutStrategy(); got != tc.want {
				t.Errorf("GetRolloutStrategy() = %q, want %q", got, tc.want)
			}
		})
	}
}
