package app_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/operator/app"
)

// BenchmarkManyScaledObjects runs one operator over TIDAL_BENCH_OBJECTS ScaledObjects (default 10,000), each on
// its own Deployment with a cron trigger (no event source to saturate), for two polling intervals, and reports
// the operator's heap and RSS and whether every poll started on time (the poller's scheduler lag histogram).
// Run: go test -run '^$' -bench ManyScaledObjects -benchtime 1x -timeout 60m ./autoscaler/operator/app/
func BenchmarkManyScaledObjects(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("TIDAL_BENCH_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	const interval = 30
	e := setup(b)
	e.Cluster.Config.QPS, e.Cluster.Config.Burst = 500, 1000
	op := e.startOperator(app.Options{ServeAddr: "127.0.0.1:0", Workers: 8})
	var rssBefore = rssBytes()

	create := func(i int) error {
		name := fmt.Sprintf("o%05d", i)
		labels := map[string]string{"app": name}
		zero := int32(0)
		_, err := e.Cluster.Client.AppsV1().Deployments(e.NS).Create(e.Ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = e.Tidal.TidalV1alpha1().ScaledObjects(e.NS).Create(e.Ctx, &tidalv1alpha1.ScaledObject{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tidalv1alpha1.ScaledObjectSpec{
				ScaleTargetRef: tidalv1alpha1.ScaleTarget{Name: name}, PollingInterval: ptr.To[int32](interval),
				Triggers: []tidalv1alpha1.ScaleTriggers{{Type: "cron", Metadata: map[string]string{
					"timezone": "UTC", "start": "0 3 * * *", "end": "0 4 * * *", "desiredReplicas": "2"}}},
			},
		}, metav1.CreateOptions{})
		return err
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := create(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("created %d Deployments and ScaledObjects in %s", n, time.Since(start).Round(time.Second))

	// Two full polling intervals after creation: every object polled at least twice.
	time.Sleep(2*interval*time.Second + 5*time.Second)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	lag, late, total := schedulerLag(b, op.Addr())
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rssBytes()-rssBefore)/(1<<20), "rss-growth-MiB")
	b.ReportMetric(lag, "max-lag-bucket-s")
	b.ReportMetric(float64(late), "polls-later-than-1s")
	b.Logf("objects=%d heap=%.0f MiB rss(process, incl. test)=%.0f MiB polls=%d later-than-1s=%d max-lag-bucket=%.3gs",
		n, float64(ms.HeapInuse)/(1<<20), float64(rssBytes())/(1<<20), total, late, lag)
	if total < int64(n) {
		b.Fatalf("only %d polls for %d objects in two intervals", total, n)
	}
}

// schedulerLag reads tidal_poller_scheduler_lag_seconds from /metrics: the smallest bucket bound holding every
// poll, the number of polls that started more than 1 s late, and the poll count.
func schedulerLag(b *testing.B, addr string) (maxBucket float64, late, total int64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	buckets := map[float64]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tidal_poller_scheduler_lag_seconds") {
			continue
		}
		fields := strings.Fields(line)
		v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		switch {
		case strings.HasPrefix(line, "tidal_poller_scheduler_lag_seconds_count"):
			total = int64(v)
		case strings.Contains(line, `le="+Inf"`):
		case strings.HasPrefix(line, "tidal_poller_scheduler_lag_seconds_bucket"):
			le := line[strings.Index(line, `le="`)+4:]
			bound, _ := strconv.ParseFloat(le[:strings.Index(le, `"`)], 64)
			buckets[bound] = int64(v)
		}
	}
	maxBucket = -1
	for bound, count := range buckets {
		if count == total && (maxBucket < 0 || bound < maxBucket) {
			maxBucket = bound
		}
	}
	late = total - buckets[1]
	return maxBucket, late, total
}

func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
