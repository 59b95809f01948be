package scalers

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// CallTimeout bounds one Sample of a trigger that has no timeout setting of its own, when the caller's context has
// no earlier deadline.
const CallTimeout = 15 * time.Second

// SampleOne is the Sample of a trigger that reads one number (a query's result, a metric's newest point): it calls
// read under CallTimeout and reports the value as metricName, active when above activation. A failed read is
// logged at debug level as failed (e.g. "mysql query failed") and returned unchanged.
func SampleOne(ctx context.Context, log *zap.Logger, failed, metricName string, activation float64, read func(context.Context) (float64, error)) ([]Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	v, err := read(ctx)
	if err != nil {
		log.Debug(failed, zap.String("error", err.Error()))
		return nil, false, err
	}
	return []Sample{{MetricName: metricName, Value: v}}, v > activation, nil
}
