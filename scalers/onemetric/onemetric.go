// Package onemetric is the skeleton of a trigger that reports one External metric read by one call per Sample:
// the AWS, Google Cloud, Azure Storage and Service Bus, SQL, NATS JetStream and RabbitMQ triggers embed Base and
// give it the function that reads their source, so that the metric spec, the Sample's timeout, activity, error
// naming and failure log, and Close have one home.
package onemetric

import (
	"cmp"
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tidalscale/tidal/scalers"
)

// Base implements scalers.Scaler for a trigger with one metric: scalers.OneMetric (the metric spec, the sample
// and its activity) read with Read. Build it with New; set Timeout and Release on the result when the trigger
// needs them.
type Base struct {
	scalers.OneMetric
	// Cfg is the trigger's configuration (its metricType, and ID and Errorf for errors).
	Cfg *scalers.TriggerConfig
	// Read reads the value. Its error names the trigger (Cfg.Errorf) and the field it concerns, unless Source
	// does.
	Read func(context.Context) (float64, error)
	// Source, when set, names what Read reads (`queue "orders"`): a Read error e becomes
	// Cfg.Errorf("<Source>: %w", e).
	Source string
	// Timeout bounds one Read when the caller's context has no earlier deadline; 0 means scalers.CallTimeout.
	Timeout time.Duration
	// Release closes what the trigger holds (a shared client); nil when there is nothing to close. Close calls
	// it once.
	Release func() error

	log       *zap.Logger
	closeOnce *sync.Once
}

// New returns the Base of the trigger cfg: one External metric named metricName with target, active above
// activation, read with read. cfg must be parsed (scalers.Parse normalizes it).
func New(cfg *scalers.TriggerConfig, metricName string, target, activation float64, read func(context.Context) (float64, error)) Base {
	return Base{OneMetric: scalers.NewOneMetric(cfg, metricName, target, activation), Cfg: cfg, Read: read,
		log: cfg.Logger.With(zap.String("trigger", cfg.ID())), closeOnce: new(sync.Once)}
}

// Sample reads the value under Timeout; active when it is above the activation threshold. A failed read is
// logged at debug level as "<type> sample failed" and returned unchanged.
func (b *Base) Sample(ctx context.Context) ([]scalers.Sample, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(b.Timeout, scalers.CallTimeout))
	defer cancel()
	v, err := b.read(ctx)
	if err != nil {
		b.log.Debug(b.Cfg.Type+" sample failed", zap.String("error", err.Error()))
		return nil, false, err
	}
	return b.Value(v)
}

func (b *Base) read(ctx context.Context) (float64, error) {
	v, err := b.Read(ctx)
	if err != nil && b.Source != "" {
		return 0, b.Cfg.Errorf("%s: %w", b.Source, err)
	}
	return v, err
}

// Close calls Release the first time; later calls return nil.
func (b *Base) Close(context.Context) error {
	var err error
	b.closeOnce.Do(func() {
		if b.Release != nil {
			err = b.Release()
		}
	})
	return err
}
