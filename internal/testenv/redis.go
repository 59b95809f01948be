package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
)

// RedisAddr is the Redis server the test machine runs.
const RedisAddr = "127.0.0.1:6379"

// RedisList is a client of the Redis at addr and a list key unique to this test, deleted when it ends.
func RedisList(t testing.TB, addr string) (*goredis.Client, string) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: addr})
	key := fmt.Sprintf("tidal-test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), rand.Int64())
	t.Cleanup(func() { rc.Del(context.Background(), key); _ = rc.Close() })
	return rc, key
}

// Push appends n items to the list key.
func Push(t testing.TB, rc *goredis.Client, key string, n int) {
	t.Helper()
	items := make([]any, n)
	for i := range items {
		items[i] = "job-" + strconv.Itoa(i)
	}
	if err := rc.RPush(context.Background(), key, items...).Err(); err != nil {
		t.Fatal(err)
	}
}

// RedisScaledObject scales the Deployment target on the length of list (5 items per replica, 0 to 10 replicas,
// polled every second, 2 s cooldown).
func RedisScaledObject(name, target, addr, list string) *tidalv1alpha1.ScaledObject {
	return &tidalv1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tidalv1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  tidalv1alpha1.ScaleTarget{Name: target},
			PollingInterval: ptr.To[int32](1),
			CooldownPeriod:  ptr.To[int32](2),
			MinReplicaCount: ptr.To[int32](0),
			MaxReplicaCount: ptr.To[int32](10),
			Triggers: []tidalv1alpha1.ScaleTriggers{{
				Type: "redis", Name: "queue",
				Metadata: map[string]string{"address": addr, "listName": list, "listLength": "5"},
			}},
		},
	}
}

// RedisScaledJob creates a Job (image tidal/batch, restartPolicy Never) for every perJob items of list (trigger
// "batches", polled every second, at most 10 Jobs).
func RedisScaledJob(name, addr, list string, perJob int) *tidalv1alpha1.ScaledJob {
	return &tidalv1alpha1.ScaledJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tidalv1alpha1.ScaledJobSpec{
			PollingInterval: ptr.To[int32](1),
			MaxReplicaCount: ptr.To[int32](10),
			JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "job", Image: "tidal/batch"}},
			}}},
			Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "redis", Name: "batches",
				Metadata: map[string]string{"address": addr, "listName": list, "listLength": strconv.Itoa(perJob)}}},
		},
	}
}

// PrivateRedis is a redis-server of one test's own on a free loopback port, which the test may stop and start
// again (on the same port, empty) to make the event source go away.
type PrivateRedis struct {
	Addr string
	t    testing.TB
	dir  string
	proc *Proc
}

// StartRedis starts a PrivateRedis; it fails t when redis-server is not installed (.ci/run installs it).
func StartRedis(t testing.TB) *PrivateRedis {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &PrivateRedis{Addr: addr, t: t, dir: t.TempDir()}
	r.Start()
	return r
}

// Start runs the server (again) and waits until it answers.
func (r *PrivateRedis) Start() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatal("redis-server is not installed (.ci/run installs it)")
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.proc = Start(r.t, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", r.dir)
	rc := goredis.NewClient(&goredis.Options{Addr: r.Addr})
	defer rc.Close()
	Eventually(r.t, "redis-server at "+r.Addr, 30*time.Second, func() (bool, string) {
		err := rc.Ping(context.Background()).Err()
		return err == nil, fmt.Sprint(err)
	})
}

// Stop kills the server: clients see connection refused until Start.
func (r *PrivateRedis) Stop() { r.proc.Kill() }
