package provider

import (
	"fmt"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	"go.uber.org/zap"
)

// zapLogger adapts zap to virtual-kubelet's log.Logger, which VK's controllers read from their context
// (log.G(ctx)). It is put in the context given to the controllers, never installed as VK's global default.
type zapLogger struct{ s *zap.SugaredLogger }

func newVKLogger(l *zap.Logger) vklog.Logger {
	return zapLogger{s: l.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (z zapLogger) Debug(a ...any)                         { z.s.Debug(a...) }
func (z zapLogger) Debugf(f string, a ...any)              { z.s.Debug(fmt.Sprintf(f, a...)) }
func (z zapLogger) Info(a ...any)                          { z.s.Info(a...) }
func (z zapLogger) Infof(f string, a ...any)               { z.s.Info(fmt.Sprintf(f, a...)) }
func (z zapLogger) Warn(a ...any)                          { z.s.Warn(a...) }
func (z zapLogger) Warnf(f string, a ...any)               { z.s.Warn(fmt.Sprintf(f, a...)) }
func (z zapLogger) Error(a ...any)                         { z.s.Error(a...) }
func (z zapLogger) Errorf(f string, a ...any)              { z.s.Error(fmt.Sprintf(f, a...)) }
func (z zapLogger) Fatal(a ...any)                         { z.s.Error(a...) } // never exit the node from a library
func (z zapLogger) Fatalf(f string, a ...any)              { z.s.Error(fmt.Sprintf(f, a...)) }
func (z zapLogger) WithField(k string, v any) vklog.Logger { return zapLogger{s: z.s.With(k, v)} }
func (z zapLogger) WithError(err error) vklog.Logger {
	if err == nil {
		return z
	}
	return zapLogger{s: z.s.With(zap.String("error", err.Error()))} // not zap.Error: VK errors carry stack traces
}
func (z zapLogger) WithFields(f vklog.Fields) vklog.Logger {
	kv := make([]any, 0, 2*len(f))
	for k, v := range f {
		kv = append(kv, k, v)
	}
	return zapLogger{s: z.s.With(kv...)}
}
