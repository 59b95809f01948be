package v1alpha1

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func rolloutStrategies() []string   { return []string{RolloutStrategyDefault, RolloutStrategyGradual} }
func propagationPolicies() []string { return []string{"background", "foreground"} }
func jobScalingStrategies() []string {
	return []string{ScalingStrategyDefault, ScalingStrategyCustom, ScalingStrategyAccurate, ScalingStrategyEager}
}
func multipleScalersCalculations() []string { return []string{"avg", "max", "min", "sum"} }

// Validate checks a ScaledJob; every error names its field (spec...., or metadata.annotations[...] for the
// placement annotations, which a ScaledJob carries itself).
func (sj *ScaledJob) Validate() field.ErrorList {
	errs := sj.Spec.validate(field.NewPath("spec"))
	return append(errs, ValidatePlacementAnnotations(sj.Annotations, field.NewPath("metadata", "annotations"))...)
}

func (s *ScaledJobSpec) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case s.JobTargetRef == nil:
		errs = append(errs, field.Required(p.Child("jobTargetRef"), "spec.jobTargetRef is required"))
	case len(s.JobTargetRef.Template.Spec.Containers) == 0:
		errs = append(errs, field.Required(p.Child("jobTargetRef", "template", "spec", "containers"),
			"spec.jobTargetRef.template.spec.containers must have at least one container"))
	}
	errs = append(errs, minimum(s.PollingInterval, 1, p.Child("pollingInterval"))...)
	errs = append(errs, minimum(s.SuccessfulJobsHistoryLimit, 0, p.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, minimum(s.FailedJobsHistoryLimit, 0, p.Child("failedJobsHistoryLimit"))...)
	errs = append(errs, minimum(s.MinReplicaCount, 0, p.Child("minReplicaCount"))...)
	errs = append(errs, minimum(s.MaxReplicaCount, 0, p.Child("maxReplicaCount"))...)
	if minReplicas, maxReplicas := s.GetMinReplicaCount(), s.GetMaxReplicaCount(); minReplicas > maxReplicas {
		errs = append(errs, field.Invalid(p.Child("minReplicaCount"), minReplicas,
			fmt.Sprintf("spec.minReplicaCount must be less than or equal to spec.maxReplicaCount (%d)", maxReplicas)))
	}
	if s.RolloutStrategy != "" && !oneOf(s.RolloutStrategy, rolloutStrategies()) {
		errs = append(errs, field.NotSupported(p.Child("rolloutStrategy"), s.RolloutStrategy, rolloutStrategies()))
	}
	if r := s.Rollout; r != nil {
		if r.Strategy != "" && !oneOf(r.Strategy, rolloutStrategies()) {
			errs = append(errs, field.NotSupported(p.Child("rollout", "strategy"), r.Strategy, rolloutStrategies()))
		}
		if r.PropagationPolicy != "" && !oneOf(r.PropagationPolicy, propagationPolicies()) {
			errs = append(errs, field.NotSupported(p.Child("rollout", "propagationPolicy"), r.PropagationPolicy, propagationPolicies()))
		}
	}
	if st := s.ScalingStrategy; st != nil {
		errs = append(errs, validateJobScalingStrategy(st, p.Child("scalingStrategy"))...)
	}
	errs = append(errs, validateTriggers(s.Triggers, p.Child("triggers"))...)
	errs = append(errs, s.Placement.Validate(p.Child("placement"))...)
	return errs
}

func validateJobScalingStrategy(st *ScalingStrategy, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st.Strategy != "" && !oneOf(st.Strategy, jobScalingStrategies()) {
		errs = append(errs, field.NotSupported(p.Child("strategy"), st.Strategy, jobScalingStrategies()))
	}
	if st.CustomScalingRunningJobPercentage != "" {
		if _, err := parseDecimal(st.CustomScalingRunningJobPercentage); err != nil {
			errs = append(errs, field.Invalid(p.Child("customScalingRunningJobPercentage"), st.CustomScalingRunningJobPercentage, err.Error()))
		}
	}
	if st.MultipleScalersCalculation != "" && !oneOf(st.MultipleScalersCalculation, multipleScalersCalculations()) {
		errs = append(errs, field.NotSupported(p.Child("multipleScalersCalculation"), st.MultipleScalersCalculation, multipleScalersCalculations()))
	}
	return errs
}

func podIdentityProviders() []string {
	return []string{string(PodIdentityProviderAWS), string(PodIdentityProviderAWSEKS), string(PodIdentityProviderAzureWorkload),
		string(PodIdentityProviderGCP), string(PodIdentityProviderNone)}
}
func identityOwners() []string { return []string{"keda", "workload"} }

// Validate checks a TriggerAuthentication; every error names its field (spec....).
func (ta *TriggerAuthentication) Validate() field.ErrorList {
	errs := ta.Spec.validate(field.NewPath("spec"))
	if ta.Spec.FilePath != "" {
		// Files are read from the operator's and adapter's pods: a cluster-wide credential, not a namespace's.
		errs = append(errs, field.Forbidden(field.NewPath("spec", "filePath"),
			"only a ClusterTriggerAuthentication may read parameters from a file (the files are mounted in Tidal's pods)"))
	}
	return errs
}

// Validate checks a ClusterTriggerAuthentication; every error names its field (spec....).
func (cta *ClusterTriggerAuthentication) Validate() field.ErrorList {
	return cta.Spec.validate(field.NewPath("spec"))
}

func (s *TriggerAuthenticationSpec) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if pi := s.PodIdentity; pi != nil {
		pp := p.Child("podIdentity")
		if !oneOf(string(pi.Provider), podIdentityProviders()) {
			errs = append(errs, field.NotSupported(pp.Child("provider"), pi.Provider, podIdentityProviders()))
		}
		if pi.IdentityOwner != nil && !oneOf(*pi.IdentityOwner, identityOwners()) {
			errs = append(errs, field.NotSupported(pp.Child("identityOwner"), *pi.IdentityOwner, identityOwners()))
		}
	}
	for i, r := range s.SecretTargetRef {
		errs = append(errs, requireAll(p.Child("secretTargetRef").Index(i), "parameter", r.Parameter, "name", r.Name, "key", r.Key)...)
	}
	for i, r := range s.Env {
		errs = append(errs, requireAll(p.Child("env").Index(i), "parameter", r.Parameter, "name", r.Name)...)
	}
	for i, r := range s.ConfigMapTargetRef {
		errs = append(errs, requireAll(p.Child("configMapTargetRef").Index(i), "parameter", r.Parameter, "name", r.Name, "key", r.Key)...)
	}
	if s.FilePath != "" {
		if err := ValidateAuthFilePath(s.FilePath); err != nil {
			errs = append(errs, field.Invalid(p.Child("filePath"), s.FilePath, err.Error()))
		}
	}
	for i, r := range s.BoundServiceAccountToken {
		errs = append(errs, requireAll(p.Child("boundServiceAccountToken").Index(i), "parameter", r.Parameter, "serviceAccountName", r.ServiceAccountName)...)
	}
	if s.OAuth2 != nil {
		errs = append(errs, s.OAuth2.validate(p.Child("oauth2"))...)
	}
	return errs
}

// validate checks an oauth2 section without reading its Secret.
func (o *OAuth2) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if o.Type != "" && o.Type != OAuth2GrantTypeClientCredentials {
		errs = append(errs, field.NotSupported(p.Child("type"), o.Type, []string{string(OAuth2GrantTypeClientCredentials)}))
	}
	errs = append(errs, requireAll(p, "clientId", o.ClientID, "tokenUrl", o.TokenURL)...)
	if o.TokenURL != "" {
		if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Invalid(p.Child("tokenUrl"), o.TokenURL, "want an absolute http or https URL"))
		}
	}
	if ref := o.ClientSecret.ValueFrom.SecretKeyRef; ref.Name != "" || ref.Key != "" {
		errs = append(errs, requireAll(p.Child("clientSecret", "valueFrom", "secretKeyRef"), "name", ref.Name, "key", ref.Key)...)
	}
	for k := range o.TokenURLParams {
		switch {
		case k == "grant_type", k == "client_id", k == "client_secret", k == "":
			errs = append(errs, field.Invalid(p.Child("tokenUrlParams").Key(k), k, "the token request sets grant_type, client_id and client_secret itself"))
		case k == "scope" && len(o.Scopes) > 0:
			errs = append(errs, field.Invalid(p.Child("tokenUrlParams").Key(k), k, "set either scopes or tokenUrlParams scope"))
		}
	}
	return errs
}

// requireAll reports each empty value of the (child name, value) pairs under p.
func requireAll(p *field.Path, nameValues ...string) field.ErrorList {
	var errs field.ErrorList
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] == "" {
			errs = append(errs, field.Required(p.Child(nameValues[i]), nameValues[i]+" is required"))
		}
	}
	return errs
}

// ValidateAuthFilePath checks a spec.filePath: relative, clean, never climbing out of the root directory.
func ValidateAuthFilePath(path string) error {
	switch {
	case filepath.IsAbs(path):
		return errors.New("must be relative to --filepath-auth-root-path")
	case filepath.Clean(path) != path || path == "." || strings.HasPrefix(path, ".."+string(filepath.Separator)) || path == "..":
		return errors.New("must be a clean relative path inside --filepath-auth-root-path (no .., no trailing /)")
	}
	return nil
}
