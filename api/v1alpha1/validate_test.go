package v1alpha1

import (
	"encoding/json"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func validScaledObject() *ScaledObject {
	return &ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "shop"},
		Spec: ScaledObjectSpec{
			ScaleTargetRef:  ScaleTarget{Name: "orders-worker"},
			PollingInterval: ptr.To[int32](10),
			CooldownPeriod:  ptr.To[int32](60),
			MinReplicaCount: ptr.To[int32](1),
			MaxReplicaCount: ptr.To[int32](10),
			Fallback:        &Fallback{FailureThreshold: 3, Replicas: 2},
			Advanced: &AdvancedConfig{
				HorizontalPodAutoscalerConfig: &HorizontalPodAutoscalerConfig{
					Name: "orders-hpa",
					Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
						ScaleDown: &autoscalingv2.HPAScalingRules{
							StabilizationWindowSeconds: ptr.To[int32](300),
							Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 50, PeriodSeconds: 60}},
						},
					},
				},
				ScalingModifiers: &ScalingModifiers{Formula: "queue + lag", Target: "10", ActivationTarget: "1"},
			},
			Triggers: []ScaleTriggers{
				{Type: "redis", Name: "queue", Metadata: map[string]string{"listName": "orders"}},
				{Type: "kafka", Name: "lag", Metadata: map[string]string{"topic": "orders"},
					AuthenticationRef: &AuthenticationRef{Name: "kafka", Kind: KindClusterTriggerAuthentication}},
			},
		},
	}
}

func TestScaledObjectValidateAcceptsValid(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*ScaledObject)
	}{
		{"full", func(*ScaledObject) {}},
		{"defaults left unset", func(so *ScaledObject) {
			so.Spec.PollingInterval, so.Spec.CooldownPeriod, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount = nil, nil, nil, nil
		}},
		{"scale to zero with idle below min", func(so *ScaledObject) {
			so.Spec.IdleReplicaCount, so.Spec.MinReplicaCount = ptr.To[int32](0), ptr.To[int32](2)
		}},
		{"cpu only with min 1", func(so *ScaledObject) {
			so.Spec.Fallback, so.Spec.Advanced = nil, nil
			so.Spec.Triggers = []ScaleTriggers{{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType, Metadata: map[string]string{"value": "50"}}}
		}},
		{"hpa mode fallback with AverageValue trigger", func(so *ScaledObject) {
			so.Spec.Mode = ScalingModeHPA
			so.Spec.Advanced.ScalingModifiers = nil
		}},
		{"unnamed triggers may repeat", func(so *ScaledObject) {
			so.Spec.Advanced.ScalingModifiers = nil
			so.Spec.Triggers[0].Name, so.Spec.Triggers[1].Name = "", ""
		}},
		{"empty behavior policies are defaulted by the HPA", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.Policies = nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			so := validScaledObject()
			tc.mutate(so)
			if errs := so.Validate(); len(errs) > 0 {
				t.Errorf("Validate: %v", errs.ToAggregate())
			}
		})
	}
}

func TestScaledObjectValidateRejects(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(*ScaledObject)
		wantField string
		wantType  field.ErrorType
	}{
		{"missing target name", func(so *ScaledObject) { so.Spec.ScaleTargetRef.Name = "" },
			"spec.scaleTargetRef.name", field.ErrorTypeRequired},
		{"bad target apiVersion", func(so *ScaledObject) { so.Spec.ScaleTargetRef.APIVersion = "apps/v1/extra" },
			"spec.scaleTargetRef.apiVersion", field.ErrorTypeInvalid},
		{"unknown mode", func(so *ScaledObject) { so.Spec.Mode = "turbo" },
			"spec.mode", field.ErrorTypeNotSupported},
		{"polling interval zero", func(so *ScaledObject) { so.Spec.PollingInterval = ptr.To[int32](0) },
			"spec.pollingInterval", field.ErrorTypeInvalid},
		{"negative cooldown", func(so *ScaledObject) { so.Spec.CooldownPeriod = ptr.To[int32](-1) },
			"spec.cooldownPeriod", field.ErrorTypeInvalid},
		{"negative initial cooldown", func(so *ScaledObject) { so.Spec.InitialCooldownPeriod = ptr.To[int32](-1) },
			"spec.initialCooldownPeriod", field.ErrorTypeInvalid},
		{"min above max", func(so *ScaledObject) { so.Spec.MinReplicaCount = ptr.To[int32](11) },
			"spec.minReplicaCount", field.ErrorTypeInvalid},
		{"min above default max", func(so *ScaledObject) {
			so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount = ptr.To[int32](101), nil
		}, "spec.minReplicaCount", field.ErrorTypeInvalid},
		{"max zero", func(so *ScaledObject) {
			so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount = ptr.To[int32](0), ptr.To[int32](0)
		},
			"spec.maxReplicaCount", field.ErrorTypeInvalid},
		{"idle equal to min", func(so *ScaledObject) { so.Spec.IdleReplicaCount = ptr.To[int32](1) },
			"spec.idleReplicaCount", field.ErrorTypeInvalid},
		{"idle with default min zero", func(so *ScaledObject) {
			so.Spec.IdleReplicaCount, so.Spec.MinReplicaCount = ptr.To[int32](0), nil
		}, "spec.idleReplicaCount", field.ErrorTypeInvalid},
		{"no triggers", func(so *ScaledObject) { so.Spec.Triggers, so.Spec.Advanced.ScalingModifiers = nil, nil },
			"spec.triggers", field.ErrorTypeRequired},
		{"too many triggers", func(so *ScaledObject) {
			so.Spec.Advanced.ScalingModifiers = nil
			so.Spec.Triggers = make([]ScaleTriggers, MaxTriggers+1)
			for i := range so.Spec.Triggers {
				so.Spec.Triggers[i].Type = "redis"
			}
		}, "spec.triggers", field.ErrorTypeTooMany},
		{"empty trigger type", func(so *ScaledObject) { so.Spec.Triggers[1].Type = "" },
			"spec.triggers[1].type", field.ErrorTypeRequired},
		{"duplicate trigger names", func(so *ScaledObject) { so.Spec.Triggers[1].Name = "queue"; so.Spec.Advanced.ScalingModifiers = nil },
			"spec.triggers[1].name", field.ErrorTypeDuplicate},
		{"explicit name equal to a generated name", func(so *ScaledObject) {
			so.Spec.Advanced.ScalingModifiers = nil
			so.Spec.Triggers[0].Name = "s1-redis"
			so.Spec.Triggers[1].Name, so.Spec.Triggers[1].Type = "", "redis"
		}, "spec.triggers[1].name", field.ErrorTypeDuplicate},
		{"formula syntax error", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Formula = "(queue + " },
			"spec.advanced.scalingModifiers.formula", field.ErrorTypeInvalid},
		{"formula unknown trigger name", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Formula = "queue + nosuch" },
			"spec.advanced.scalingModifiers.formula", field.ErrorTypeInvalid},
		{"formula not a number", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Formula = `"text"` },
			"spec.advanced.scalingModifiers.formula", field.ErrorTypeInvalid},
		{"unknown metric type", func(so *ScaledObject) { so.Spec.Triggers[0].MetricType = "Average" },
			"spec.triggers[0].metricType", field.ErrorTypeNotSupported},
		{"Utilization on an event trigger", func(so *ScaledObject) { so.Spec.Triggers[0].MetricType = autoscalingv2.UtilizationMetricType },
			"spec.triggers[0].metricType", field.ErrorTypeInvalid},
		{"Value on a cpu trigger", func(so *ScaledObject) {
			so.Spec.Triggers = append(so.Spec.Triggers, ScaleTriggers{Type: "cpu", MetricType: autoscalingv2.ValueMetricType})
		}, "spec.triggers[2].metricType", field.ErrorTypeInvalid},
		{"authenticationRef without name", func(so *ScaledObject) { so.Spec.Triggers[1].AuthenticationRef.Name = "" },
			"spec.triggers[1].authenticationRef.name", field.ErrorTypeRequired},
		{"authenticationRef unknown kind", func(so *ScaledObject) { so.Spec.Triggers[1].AuthenticationRef.Kind = "Secret" },
			"spec.triggers[1].authenticationRef.kind", field.ErrorTypeNotSupported},
		{"cpu only and scale to zero", func(so *ScaledObject) {
			so.Spec.Fallback, so.Spec.Advanced, so.Spec.MinReplicaCount = nil, nil, ptr.To[int32](0)
			so.Spec.Triggers = []ScaleTriggers{{Type: "memory", MetricType: autoscalingv2.AverageValueMetricType}}
		}, "spec.minReplicaCount", field.ErrorTypeInvalid},
		{"fallback failure threshold zero", func(so *ScaledObject) { so.Spec.Fallback.FailureThreshold = 0 },
			"spec.fallback.failureThreshold", field.ErrorTypeInvalid},
		{"fallback negative replicas", func(so *ScaledObject) { so.Spec.Fallback.Replicas = -1 },
			"spec.fallback.replicas", field.ErrorTypeInvalid},
		{"fallback unknown behavior", func(so *ScaledObject) { so.Spec.Fallback.Behavior = "always" },
			"spec.fallback.behavior", field.ErrorTypeNotSupported},
		{"fallback with only cpu triggers", func(so *ScaledObject) {
			so.Spec.Advanced = nil
			so.Spec.Triggers = []ScaleTriggers{{Type: "cpu", MetricType: autoscalingv2.UtilizationMetricType}}
		}, "spec.fallback", field.ErrorTypeInvalid},
		{"fallback in hpa mode without AverageValue metric", func(so *ScaledObject) {
			so.Spec.Mode, so.Spec.Advanced.ScalingModifiers = ScalingModeHPA, nil
			so.Spec.Triggers[0].MetricType, so.Spec.Triggers[1].MetricType = autoscalingv2.ValueMetricType, autoscalingv2.ValueMetricType
		}, "spec.fallback", field.ErrorTypeInvalid},
		{"fallback in hpa mode with Value scalingModifiers", func(so *ScaledObject) {
			so.Spec.Mode, so.Spec.Advanced.ScalingModifiers.MetricType = ScalingModeHPA, autoscalingv2.ValueMetricType
		}, "spec.fallback", field.ErrorTypeInvalid},
		{"formula without target", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Target = "" },
			"spec.advanced.scalingModifiers.target", field.ErrorTypeRequired},
		{"target without formula", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Formula = "" },
			"spec.advanced.scalingModifiers.formula", field.ErrorTypeRequired},
		{"target zero", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Target = "0" },
			"spec.advanced.scalingModifiers.target", field.ErrorTypeInvalid},
		{"target not a number", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.Target = "ten" },
			"spec.advanced.scalingModifiers.target", field.ErrorTypeInvalid},
		{"activation target negative", func(so *ScaledObject) { so.Spec.Advanced.ScalingModifiers.ActivationTarget = "-1" },
			"spec.advanced.scalingModifiers.activationTarget", field.ErrorTypeInvalid},
		{"modifiers Utilization metric type", func(so *ScaledObject) {
			so.Spec.Advanced.ScalingModifiers.MetricType = autoscalingv2.UtilizationMetricType
		}, "spec.advanced.scalingModifiers.metricType", field.ErrorTypeNotSupported},
		{"hpa name not a DNS name", func(so *ScaledObject) { so.Spec.Advanced.HorizontalPodAutoscalerConfig.Name = "Orders_HPA" },
			"spec.advanced.horizontalPodAutoscalerConfig.name", field.ErrorTypeInvalid},
		{"behavior stabilization window too long", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.StabilizationWindowSeconds = ptr.To[int32](3601)
		}, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds", field.ErrorTypeInvalid},
		{"behavior policy unknown type", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.Policies[0].Type = "Nodes"
		}, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].type", field.ErrorTypeNotSupported},
		{"behavior policy zero period", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.Policies[0].PeriodSeconds = 0
		}, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].periodSeconds", field.ErrorTypeInvalid},
		{"behavior unknown select policy", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.SelectPolicy = ptr.To[autoscalingv2.ScalingPolicySelect]("Avg")
		}, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.selectPolicy", field.ErrorTypeNotSupported},
		{"behavior negative tolerance", func(so *ScaledObject) {
			so.Spec.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown.Tolerance = ptr.To(resource.MustParse("-0.1"))
		}, "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.tolerance", field.ErrorTypeInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			so := validScaledObject()
			tc.mutate(so)
			errs := so.Validate()
			errorsOnlyUnder(t, errs, tc.wantField)
			for _, e := range errs {
				if e.Field == tc.wantField && e.Type != tc.wantType {
					t.Errorf("error %q has type %s, want %s", e.Error(), e.Type, tc.wantType)
				}
			}
		})
	}
}

func validScaledJob() *ScaledJob {
	return &ScaledJob{
		ObjectMeta: metav1.ObjectMeta{Name: "transcode", Namespace: "media"},
		Spec: ScaledJobSpec{
			JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "worker", Image: "busybox"}},
			}}},
			MaxReplicaCount: ptr.To[int32](10),
			Rollout:         &Rollout{Strategy: "gradual", PropagationPolicy: "foreground"},
			ScalingStrategy: &ScalingStrategy{Strategy: ScalingStrategyCustom, CustomScalingRunningJobPercentage: "0.5", MultipleScalersCalculation: "sum"},
			Triggers:        []ScaleTriggers{{Type: "rabbitmq", Metadata: map[string]string{"queueName": "videos"}}},
		},
	}
}

func TestScaledJobValidate(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(*ScaledJob)
		wantField string // empty: valid
	}{
		{"valid", func(*ScaledJob) {}, ""},
		{"missing jobTargetRef", func(sj *ScaledJob) { sj.Spec.JobTargetRef = nil }, "spec.jobTargetRef"},
		{"no containers", func(sj *ScaledJob) { sj.Spec.JobTargetRef.Template.Spec.Containers = nil }, "spec.jobTargetRef.template.spec.containers"},
		{"polling interval zero", func(sj *ScaledJob) { sj.Spec.PollingInterval = ptr.To[int32](0) }, "spec.pollingInterval"},
		{"negative history limit", func(sj *ScaledJob) { sj.Spec.FailedJobsHistoryLimit = ptr.To[int32](-1) }, "spec.failedJobsHistoryLimit"},
		{"min above max", func(sj *ScaledJob) { sj.Spec.MinReplicaCount = ptr.To[int32](11) }, "spec.minReplicaCount"},
		{"unknown deprecated rolloutStrategy", func(sj *ScaledJob) { sj.Spec.RolloutStrategy = "instant" }, "spec.rolloutStrategy"},
		{"unknown rollout strategy", func(sj *ScaledJob) { sj.Spec.Rollout.Strategy = "instant" }, "spec.rollout.strategy"},
		{"unknown propagation policy", func(sj *ScaledJob) { sj.Spec.Rollout.PropagationPolicy = "orphan" }, "spec.rollout.propagationPolicy"},
		{"unknown scaling strategy", func(sj *ScaledJob) { sj.Spec.ScalingStrategy.Strategy = "greedy" }, "spec.scalingStrategy.strategy"},
		{"bad running job percentage", func(sj *ScaledJob) { sj.Spec.ScalingStrategy.CustomScalingRunningJobPercentage = "half" },
			"spec.scalingStrategy.customScalingRunningJobPercentage"},
		{"unknown multiple scalers calculation", func(sj *ScaledJob) { sj.Spec.ScalingStrategy.MultipleScalersCalculation = "median" },
			"spec.scalingStrategy.multipleScalersCalculation"},
		{"no triggers", func(sj *ScaledJob) { sj.Spec.Triggers = nil }, "spec.triggers"},
		{"trigger metricType typo", func(sj *ScaledJob) { sj.Spec.Triggers[0].MetricType = "average" }, "spec.triggers[0].metricType"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sj := validScaledJob()
			tc.mutate(sj)
			errs := sj.Validate()
			if tc.wantField == "" {
				if len(errs) > 0 {
					t.Errorf("Validate: %v", errs.ToAggregate())
				}
				return
			}
			errorsOnlyUnder(t, errs, tc.wantField)
		})
	}
}

func TestTriggerAuthenticationValidate(t *testing.T) {
	valid := func() TriggerAuthenticationSpec {
		return TriggerAuthenticationSpec{
			PodIdentity:              &AuthPodIdentity{Provider: PodIdentityProviderAWS, IdentityOwner: ptr.To("workload")},
			SecretTargetRef:          []AuthSecretTargetRef{{Parameter: "password", Name: "redis", Key: "password"}},
			Env:                      []AuthEnvironment{{Parameter: "host", Name: "REDIS_HOST"}},
			ConfigMapTargetRef:       []AuthConfigMapTargetRef{{Parameter: "address", Name: "redis", Key: "address"}},
			BoundServiceAccountToken: []BoundServiceAccountToken{{Parameter: "token", ServiceAccountName: "reader"}},
			OAuth2: &OAuth2{Type: OAuth2GrantTypeClientCredentials, ClientID: "tidal", TokenURL: "https://idp.example/oauth2/token",
				ClientSecret: OAuth2ClientSecret{ValueFrom: ValueFromSecret{SecretKeyRef: SecretKeyRef{Name: "oauth", Key: "secret"}}},
				Scopes:       []string{"read"}, TokenURLParams: map[string]string{"audience": "api"}},
		}
	}
	cases := []struct {
		name      string
		mutate    func(*TriggerAuthenticationSpec)
		wantField string
	}{
		{"valid", func(*TriggerAuthenticationSpec) {}, ""},
		{"unknown pod identity provider", func(s *TriggerAuthenticationSpec) { s.PodIdentity.Provider = "aws-kiam" }, "spec.podIdentity.provider"},
		{"unknown identity owner", func(s *TriggerAuthenticationSpec) { s.PodIdentity.IdentityOwner = ptr.To("operator") }, "spec.podIdentity.identityOwner"},
		{"secret ref without key", func(s *TriggerAuthenticationSpec) { s.SecretTargetRef[0].Key = "" }, "spec.secretTargetRef[0].key"},
		{"env without parameter", func(s *TriggerAuthenticationSpec) { s.Env[0].Parameter = "" }, "spec.env[0].parameter"},
		{"configmap ref without name", func(s *TriggerAuthenticationSpec) { s.ConfigMapTargetRef[0].Name = "" }, "spec.configMapTargetRef[0].name"},
		{"token without service account", func(s *TriggerAuthenticationSpec) { s.BoundServiceAccountToken[0].ServiceAccountName = "" },
			"spec.boundServiceAccountToken[0].serviceAccountName"},
		{"oauth2 without type (the default)", func(s *TriggerAuthenticationSpec) { s.OAuth2.Type = "" }, ""},
		{"oauth2 password grant", func(s *TriggerAuthenticationSpec) { s.OAuth2.Type = "password" }, "spec.oauth2.type"},
		{"oauth2 without clientId", func(s *TriggerAuthenticationSpec) { s.OAuth2.ClientID = "" }, "spec.oauth2.clientId"},
		{"oauth2 without tokenUrl", func(s *TriggerAuthenticationSpec) { s.OAuth2.TokenURL = "" }, "spec.oauth2.tokenUrl"},
		{"oauth2 relative tokenUrl", func(s *TriggerAuthenticationSpec) { s.OAuth2.TokenURL = "/oauth2/token" }, "spec.oauth2.tokenUrl"},
		{"oauth2 ftp tokenUrl", func(s *TriggerAuthenticationSpec) { s.OAuth2.TokenURL = "ftp://idp.example/token" }, "spec.oauth2.tokenUrl"},
		{"oauth2 secret without key", func(s *TriggerAuthenticationSpec) { s.OAuth2.ClientSecret.ValueFrom.SecretKeyRef.Key = "" },
			"spec.oauth2.clientSecret.valueFrom.secretKeyRef.key"},
		{"oauth2 tokenUrlParams setting client_secret", func(s *TriggerAuthenticationSpec) { s.OAuth2.TokenURLParams["client_secret"] = "x" },
			"spec.oauth2.tokenUrlParams[client_secret]"},
		{"absolute filePath", func(s *TriggerAuthenticationSpec) { s.FilePath = "/etc/passwd" }, "spec.filePath"},
		{"filePath climbing out", func(s *TriggerAuthenticationSpec) { s.FilePath = "../sa/token" }, "spec.filePath"},
		{"unclean filePath", func(s *TriggerAuthenticationSpec) { s.FilePath = "creds/../../x" }, "spec.filePath"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ta := &TriggerAuthentication{Spec: valid()}
			tc.mutate(&ta.Spec)
			cta := &ClusterTriggerAuthentication{Spec: *ta.Spec.DeepCopy()}
			for kind, errs := range map[string]field.ErrorList{"TriggerAuthentication": ta.Validate(), "ClusterTriggerAuthentication": cta.Validate()} {
				if tc.wantField == "" {
					if len(errs) > 0 {
						t.Errorf("%s Validate: %v", kind, errs.ToAggregate())
					}
					continue
				}
				errorsOnlyUnder(t, errs, tc.wantField)
			}
		})
	}
}

// filePath reads files of Tidal's own pods: a ClusterTriggerAuthentication may set it, a namespaced
// TriggerAuthentication may not.
func TestFilePathOnlyInClusterTriggerAuthentication(t *testing.T) {
	spec := TriggerAuthenticationSpec{FilePath: "redis/auth.json"}
	if errs := (&ClusterTriggerAuthentication{Spec: spec}).Validate(); len(errs) > 0 {
		t.Fatalf("ClusterTriggerAuthentication: %v", errs.ToAggregate())
	}
	errorsOnlyUnder(t, (&TriggerAuthentication{Spec: spec}).Validate(), "spec.filePath")
}

func validNodeGroup() *NodeGroup {
	return &NodeGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "general"},
		Spec: NodeGroupSpec{
			MinSize:      1,
			MaxSize:      10,
			PricePerHour: "0.096",
			Priority:     10,
			ProviderRef:  ProviderRef{Name: ProviderSim, Config: map[string]string{"latency": "2s"}},
			Template: NodeTemplate{
				Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3900m"), corev1.ResourceMemory: resource.MustParse("15Gi")},
				Labels:      map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge"},
				Taints:      []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}},
				Zone:        "eu-west-1a",
			},
		},
	}
}

func TestNodeGroupValidate(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(*NodeGroup)
		wantField string
	}{
		{"valid", func(*NodeGroup) {}, ""},
		{"negative min", func(ng *NodeGroup) { ng.Spec.MinSize = -1 }, "spec.minSize"},
		{"min above max", func(ng *NodeGroup) { ng.Spec.MinSize = 11 }, "spec.minSize"},
		{"price with currency", func(ng *NodeGroup) { ng.Spec.PricePerHour = "$0.10" }, "spec.pricePerHour"},
		{"negative price", func(ng *NodeGroup) { ng.Spec.PricePerHour = "-1" }, "spec.pricePerHour"},
		{"unknown provider", func(ng *NodeGroup) { ng.Spec.ProviderRef.Name = "aws" }, "spec.providerRef.name"},
		{"capacity without memory", func(ng *NodeGroup) {
			delete(ng.Spec.Template.Capacity, corev1.ResourceMemory)
			ng.Spec.Template.Allocatable = nil
		},
			"spec.template.capacity"},
		{"negative capacity", func(ng *NodeGroup) { ng.Spec.Template.Capacity[corev1.ResourcePods] = resource.MustParse("-1") },
			"spec.template.capacity"},
		{"allocatable above capacity", func(ng *NodeGroup) { ng.Spec.Template.Allocatable[corev1.ResourceCPU] = resource.MustParse("5") },
			"spec.template.allocatable"},
		{"allocatable of a resource not in capacity", func(ng *NodeGroup) {
			ng.Spec.Template.Allocatable["nvidia.com/gpu"] = resource.MustParse("1")
		}, "spec.template.allocatable"},
		{"bad label key", func(ng *NodeGroup) { ng.Spec.Template.Labels["-bad"] = "x" }, "spec.template.labels"},
		{"bad label value", func(ng *NodeGroup) { ng.Spec.Template.Labels["team"] = "a b" }, "spec.template.labels"},
		{"unknown taint effect", func(ng *NodeGroup) { ng.Spec.Template.Taints[0].Effect = "NoRun" }, "spec.template.taints[0].effect"},
		{"bad taint key", func(ng *NodeGroup) { ng.Spec.Template.Taints[0].Key = "" }, "spec.template.taints[0].key"},
		{"bad zone", func(ng *NodeGroup) { ng.Spec.Template.Zone = "eu west" }, "spec.template.zone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ng := validNodeGroup()
			tc.mutate(ng)
			errs := ng.Validate()
			if tc.wantField == "" {
				if len(errs) > 0 {
					t.Errorf("Validate: %v", errs.ToAggregate())
				}
				return
			}
			errorsOnlyUnder(t, errs, tc.wantField)
		})
	}
}

// TestInvalidManifests runs the manifests the CRD tests send to the API server through Validate: the webhook
// and the CRD must refuse the same objects for the same field.
func TestInvalidManifests(t *testing.T) {
	ms := loadManifests(t, "../testdata/invalid", nil)
	if len(ms) < 10 {
		t.Fatalf("only %d invalid manifests", len(ms))
	}
	for _, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(m.json, &meta); err != nil {
				t.Fatal(err)
			}
			want := meta.Metadata.Annotations[wantFieldAnnotation]
			if want == "" {
				t.Fatalf("manifest has no %s annotation", wantFieldAnnotation)
			}
			errorsOnlyUnder(t, m.obj.Validate(), want)
		})
	}
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	cases := []struct {
		name string
		js   string
	}{
		{"misspelled spec field", `{"apiVersion":"tidal.dev/v1alpha1","kind":"ScaledObject","spec":{"scaleTargetRef":{"name":"a"},"maxReplicas":3}}`},
		{"misspelled trigger field", `{"apiVersion":"tidal.dev/v1alpha1","kind":"ScaledObject","spec":{"scaleTargetRef":{"name":"a"},"triggers":[{"type":"redis","metaData":{}}]}}`},
		{"keda apiVersion", `{"apiVersion":"keda.sh/v1alpha1","kind":"ScaledObject","spec":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeStrict([]byte(tc.js)); err == nil {
				t.Errorf("decodeStrict accepted %s", tc.js)
			}
		})
	}
}
