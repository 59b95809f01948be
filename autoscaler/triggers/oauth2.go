package triggers

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// oauth2Params puts an authentication's spec.oauth2 into the parameters the scalers' authModes oauth reads
// (scalers/httpauth.OAuth), as KEDA does: oauthTokenURI, clientID, clientSecret (read from the Secret in
// namespace), scopes (comma separated) and endpointParams (tokenUrlParams URL-encoded). Errors name the field,
// never the secret.
func (r *Resolver) oauth2Params(ctx context.Context, namespace string, o *tidalv1alpha1.OAuth2, params map[string]string) error {
	if o == nil {
		return nil
	}
	if o.Type != "" && o.Type != tidalv1alpha1.OAuth2GrantTypeClientCredentials {
		return fmt.Errorf("spec.oauth2.type: want %s, got %q", tidalv1alpha1.OAuth2GrantTypeClientCredentials, o.Type)
	}
	params["oauthTokenURI"] = o.TokenURL
	params["clientID"] = o.ClientID
	if ref := o.ClientSecret.ValueFrom.SecretKeyRef; ref.Name != "" || ref.Key != "" {
		const field = "spec.oauth2.clientSecret.valueFrom.secretKeyRef"
		if ref.Name == "" || ref.Key == "" {
			return fmt.Errorf("%s: name and key are required", field)
		}
		sec, err := r.Kube.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: secret %q: %w", field, ref.Name, err)
		}
		v, ok := sec.Data[ref.Key]
		if !ok {
			return fmt.Errorf("%s: secret %q has no key %q", field, ref.Name, ref.Key)
		}
		params["clientSecret"] = string(v)
	}
	if len(o.Scopes) > 0 {
		params["scopes"] = strings.Join(o.Scopes, ",")
	}
	if len(o.TokenURLParams) > 0 {
		v := url.Values{}
		for k, val := range o.TokenURLParams {
			v.Set(k, val)
		}
		params["endpointParams"] = v.Encode()
	}
	return nil
}
