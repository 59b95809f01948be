package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledjob"
	"github.com/tidalscale/tidal/autoscaler/operator/scaledobject"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/internal/testvault"
)

// A ScaledObject whose Redis address comes from Vault (KV version 2, token authentication) scales, and follows a
// rotated address once the value is refreshed (half of --secret-store-ttl). When Vault
// goes down, Ready turns False with reason SecretStoreDegraded naming spec.hashiCorpVault while the last value
// keeps scaling; once --secret-store-ttl is over, Ready says TriggerInvalid; when Vault is back, Ready again. No
// log, event or status shows the value or the Vault token.
func TestVaultAuthenticationScales(t *testing.T) {
	e := setup(t)
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	const secretAddr = "127.0.0.1:6379"
	v.RedisAddress(t, e.Tidal, e.NS, secretAddr)
	core, logs := observer.New(zapcore.DebugLevel)
	e.startOperator(app.Options{SecretStoreTTL: 30 * time.Second, Logger: zap.New(core)})
	rc, list := testenv.RedisList(t, secretAddr)
	e.Deployment("worker", 0)
	so := testenv.RedisScaledObject("orders", "worker", "", list)
	testvault.AddressFromVault(&so.Spec.Triggers[0])
	e.ScaledObject(so)
	testenv.Push(t, rc, list, 12) // ceil(12/5) = 3
	e.WaitReplicas("worker", 3, 60*time.Second)

	// Rotation: Vault now names another Redis, where the same list is longer; the refresh (half the TTL)
	// rebuilds the scaler with it.
	rc, privateAddr := v.RotateRedis(t, list, 30) // ceil(30/5) = 6
	e.WaitReplicas("worker", 6, 90*time.Second)

	ready := func(reason, mentions string) func() (bool, string) {
		return func() (bool, string) {
			got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "orders", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			c := apimeta.FindStatusCondition(got.Status.Conditions, tidalv1alpha1.ConditionReady)
			if c == nil {
				return false, "no Ready condition"
			}
			return c.Reason == reason && strings.Contains(c.Message, mentions), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	v.Down(true)
	e.Eventually("Ready False SecretStoreDegraded", 60*time.Second, ready(scaledobject.ReasonSecretStoreDegraded, "spec.hashiCorpVault"))
	if e.Condition("orders", tidalv1alpha1.ConditionReady) != metav1.ConditionFalse {
		t.Fatal("degraded, yet Ready is not False")
	}
	// The last value keeps scaling (once the TTL is over the scalers go, so this cannot pass late).
	testenv.Push(t, rc, list, 5) // ceil(35/5) = 7
	e.WaitReplicas("worker", 7, 60*time.Second)
	e.Eventually("Ready False TriggerInvalid after the TTL", 90*time.Second, ready(scaledobject.ReasonTriggerInvalid, "spec.hashiCorpVault"))
	v.Down(false)
	e.Eventually("Ready again once Vault answers", 90*time.Second, ready(scaledobject.ReasonReady, ""))

	got, err := e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Get(e.Ctx, "orders", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := e.Cluster.Client.CoreV1().Events(e.NS).List(e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := fmt.Sprintf("%+v", got.Status)
	for _, ev := range events.Items {
		seen += "\n" + ev.Reason + ": " + ev.Message
	}
	if !strings.Contains(seen, scaledobject.ReasonSecretStoreDegraded) {
		t.Fatalf("no SecretStoreDegraded event:\n%s", seen)
	}
	for _, l := range logs.All() {
		seen += "\n" + l.Message
		for k, f := range l.ContextMap() {
			seen += fmt.Sprintf(" %s=%v", k, f)
		}
	}
	for _, secret := range []string{secretAddr, privateAddr, testvault.RootToken} {
		if strings.Contains(seen, secret) {
			t.Fatalf("a log, event or the status shows a secret value")
		}
	}
}

// A ScaledJob whose Redis address comes from Vault follows a rotated address (its scalers are rebuilt at the
// refresh), shows Ready False SecretStoreDegraded while Vault is down and the last value is in use, TriggerInvalid
// once --secret-store-ttl is over, and Ready again when Vault answers.
func TestVaultAuthenticationScaledJob(t *testing.T) {
	e := setup(t)
	v := testvault.Start(t, e.Cluster.Client, e.Cluster.Config)
	v.RedisAddress(t, e.Tidal, e.NS, testenv.RedisAddr)
	e.startOperator(app.Options{SecretStoreTTL: 20 * time.Second})
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	sj := testenv.RedisScaledJob("batch", "", list, 2)
	testvault.AddressFromVault(&sj.Spec.Triggers[0])
	e.ScaledJob(sj)
	jobCount := func() int {
		l, err := e.Cluster.Client.BatchV1().Jobs(e.NS).List(e.Ctx, metav1.ListOptions{LabelSelector: scaledjob.LabelScaledJobName + "=batch"})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	testenv.Push(t, rc, list, 4)
	e.Eventually("jobs for the list at the address Vault names", 60*time.Second, func() (bool, string) { return jobCount() >= 2, fmt.Sprint(jobCount()) })
	if err := rc.Del(e.Ctx, list).Err(); err != nil { // the workers took the batches
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	before := jobCount()

	// Only a scaler rebuilt with the rotated address sees the private Redis's list.
	v.RotateRedis(t, list, 6)
	e.Eventually("jobs for the list at the rotated address", 60*time.Second, func() (bool, string) { return jobCount() > before, fmt.Sprint(jobCount()) })

	ready := func(reason string) func() (bool, string) {
		return func() (bool, string) {
			got, err := e.Tidal.TidalV1alpha1().ScaledJobs(e.NS).Get(e.Ctx, "batch", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			c := apimeta.FindStatusCondition(got.Status.Conditions, tidalv1alpha1.ConditionReady)
			if c == nil {
				return false, "no Ready condition"
			}
			return c.Reason == reason && (reason == "ScaledJobReady" || strings.Contains(c.Message, "spec.hashiCorpVault")), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	v.Down(true)
	e.Eventually("Ready False SecretStoreDegraded", 60*time.Second, ready("SecretStoreDegraded"))
	e.Eventually("Ready False TriggerInvalid after the TTL", 60*time.Second, ready("TriggerInvalid"))
	v.Down(false)
	e.Eventually("Ready again once Vault answers", 90*time.Second, ready("ScaledJobReady"))
}
