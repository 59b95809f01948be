package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tidalscale/tidal/autoscaler/operator/app"
	scaffold "github.com/tidalscale/tidal/internal/app"
	"github.com/tidalscale/tidal/internal/testenv"
	"github.com/tidalscale/tidal/metricsadapter/poller"
	scalerregistry "github.com/tidalscale/tidal/scalers/registry"
)

// The operator sampling in-process (cmd/tidal-operator without a metrics adapter) serves KEDA's per-trigger
// series, tidal_scaler_metrics_value and tidal_scaler_active, on its /metrics.
func TestScalerMetricsOnOperatorEndpoint(t *testing.T) {
	e := setup(t)
	reg := scaffold.NewRegistry()
	ctx, cancel := context.WithCancel(e.Ctx)
	t.Cleanup(cancel)
	registry := scalerregistry.New()
	src, err := poller.Start(ctx, poller.Options{Registry: registry, Logger: zaptest.NewLogger(t).Named("poller"), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	op := e.startOperator(app.Options{ServeAddr: "127.0.0.1:0", Metrics: reg, Source: src, Registry: registry})
	rc, list := testenv.RedisList(t, testenv.RedisAddr)
	e.Deployment("orders", 0)
	e.ScaledObject(testenv.RedisScaledObject("orders", "orders", testenv.RedisAddr, list))
	testenv.Push(t, rc, list, 12)

	labels := fmt.Sprintf(`kind="ScaledObject",namespace=%q,scaledObject="orders",trigger="queue",type="redis"`, e.NS)
	e.Eventually("per-trigger series on /metrics", 60*time.Second, func() (bool, string) {
		addr := op.Addr()
		if addr == "" {
			return false, "not serving yet"
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err.Error()
		}
		var value, active bool
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "tidal_scaler_metrics_value{") && strings.Contains(line, `scaledObject="orders"`) &&
				strings.Contains(line, `trigger="queue"`) && strings.HasSuffix(line, "} 12") {
				value = true
			}
			if line == "tidal_scaler_active{"+labels+"} 1" {
				active = true
			}
		}
		return value && active, fmt.Sprintf("value=%v active=%v", value, active)
	})
}
