package awsauth

import (
	"context"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
)

// trigger is what an AWS scaler's metadata looks like: Metadata embedded beside the trigger's own fields.
type trigger struct {
	Metadata
	Queue string `tidal:"name=queue"`
}

func (t *trigger) Validate() error { return t.Metadata.Validate() }

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	md := map[string]string{"awsRegion": "eu-west-1", "queue": "jobs", "awsEndpoint": "http://127.0.0.1:4566"}
	auth := map[string]string{"awsAccessKeyID": "AKID", "awsSecretAccessKey": "s3cret-key"}
	m, err := ParseMetadata[trigger](&scalers.TriggerConfig{Type: "aws-test", Metadata: md, AuthParams: auth})
	if err != nil || m.Region != "eu-west-1" || m.Queue != "jobs" || m.SecretAccessKey != "s3cret-key" {
		t.Fatalf("ParseMetadata = %+v, %v", m, err)
	}
	c, err := m.TriggerConfig(context.Background(), &scalers.TriggerConfig{Type: "aws-test"})
	if err != nil || c.Region != "eu-west-1" || c.BaseEndpoint == nil || *c.BaseEndpoint != "http://127.0.0.1:4566" {
		t.Fatalf("TriggerConfig = %+v, %v", c, err)
	}

	_, err = ParseMetadata[trigger](&scalers.TriggerConfig{Type: "aws-test", Metadata: md, AuthParams: auth, MetricType: autoscalingv2.UtilizationMetricType})
	if err == nil || !strings.Contains(err.Error(), "aws-test trigger") || !strings.Contains(err.Error(), "Utilization") {
		t.Fatalf("Utilization: %v, want it refused naming the trigger", err)
	}
	_, err = ParseMetadata[trigger](&scalers.TriggerConfig{Type: "aws-test", Metadata: md})
	if err == nil || !strings.Contains(err.Error(), "awsAccessKeyID") {
		t.Fatalf("no credentials: %v, want awsAccessKeyID", err)
	}
}
