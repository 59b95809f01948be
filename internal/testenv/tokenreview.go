package testenv

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ReviewToken asks the cluster's TokenReview API who token belongs to when presented to audience, as a cloud
// identity provider checks a federated service-account token against the cluster's issuer: the user name, or ""
// when the token is not valid for that audience.
func ReviewToken(ctx context.Context, kube kubernetes.Interface, token, audience string) (string, error) {
	rev, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	if !rev.Status.Authenticated {
		return "", nil
	}
	return rev.Status.User.Username, nil
}
