package controlplane

import (
	"flag"
	"fmt"
	"io"
	"log"
	"strconv"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// ConfigureComponentLogging sends the output of the Kubernetes components (klog), of the standard library logger
// and of gRPC to w, at klog verbosity v. Start calls it; klog is process-wide.
//
// The components are built from their options, not their cobra commands, so none of them applies its own
// logging configuration (logsapi.ValidateAndApply). That is why the apiserver, the controller manager and the
// scheduler can share one process without "logging configuration was already applied earlier" and without
// logsapi.ResetForTest.
func ConfigureComponentLogging(w io.Writer, v int) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{
		"logtostderr":     "false",
		"alsologtostderr": "false",
		"stderrthreshold": "FATAL",
		"one_output":      "true",
		"v":               strconv.Itoa(v),
	} {
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("klog flag %q: %w", name, err)
		}
	}
	klog.SetOutput(w)
	log.SetOutput(w)
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, w, w))
	return nil
}

// jsonLogger is a zap logger writing JSON lines to w from level min up. Used for the embedded etcd, whose logs
// belong with the other component logs, not on the user's terminal.
func jsonLogger(w io.Writer, min zapcore.Level) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), min))
}
