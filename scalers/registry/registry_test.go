package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// validMetadata is, per trigger type, metadata that builds a scaler against the local test services without
// connecting (scalers connect lazily). unset lists, per field under test, base keys that conflict with it.
var validMetadata = map[string]struct {
	base map[string]string
	// auth are authParams the base needs (keys a trigger reads from a TriggerAuthentication only).
	auth  map[string]string
	unset map[string][]string
	// refused lists fields a cross-field rule refuses for every non-zero value, with the reason.
	refused map[string]string
}{
	"cron":  {base: map[string]string{"timezone": "UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "3"}},
	"kafka": {base: map[string]string{"bootstrapServers": "127.0.0.1:9092", "consumerGroup": "g", "topic": "t"}},
	"metrics-api": {base: map[string]string{"url": "http://127.0.0.1:1/metrics", "valueLocation": "a.b",
		"targetValue": "5"}},
	"mysql": {base: map[string]string{"host": "127.0.0.1", "port": "3306", "username": "root", "dbName": "mysql",
		"query": "SELECT 1", "queryValue": "5"}},
	"nats-jetstream": {base: map[string]string{"stream": "s", "consumer": "c", "account": "$G",
		"natsServerMonitoringEndpoint": "127.0.0.1:8222"}},
	"postgresql": {base: map[string]string{"host": "127.0.0.1", "port": "5432", "userName": "postgres",
		"dbName": "postgres", "sslmode": "disable", "query": "SELECT 1", "targetQueryValue": "5"}},
	"prometheus": {base: map[string]string{"serverAddress": "http://127.0.0.1:1", "query": "up", "threshold": "5"}},
	"rabbitmq": {base: map[string]string{"host": "http://127.0.0.1:15672/", "queueName": "q", "mode": "QueueLength",
		"value": "5"}, unset: map[string][]string{"queueLength": {"mode", "value"}}},
	"redis": {base: map[string]string{"address": "127.0.0.1:6379", "listName": "l"}},
	"redis-cluster": {base: map[string]string{"address": "127.0.0.1:6379", "listName": "l"},
		refused: map[string]string{"databaseIndex": "a cluster has only database 0"}},
	"redis-sentinel": {base: map[string]string{"address": "127.0.0.1:6379", "listName": "l", "sentinelMaster": "m"}},
	"redis-streams":  {base: map[string]string{"address": "127.0.0.1:6379", "stream": "s", "consumerGroup": "g"}},
	"redis-cluster-streams": {base: map[string]string{"address": "127.0.0.1:6379", "stream": "s", "consumerGroup": "g"},
		refused: map[string]string{"databaseIndex": "a cluster has only database 0"}},
	"redis-sentinel-streams": {base: map[string]string{"address": "127.0.0.1:6379", "stream": "s", "consumerGroup": "g", "sentinelMaster": "m"}},
	"external":               {base: map[string]string{"scalerAddress": "127.0.0.1:1"}},
	"external-push":          {base: map[string]string{"scalerAddress": "127.0.0.1:1"}},
	"cpu":                    {base: map[string]string{"value": "50"}},
	"azure-queue":            {base: map[string]string{"queueName": "q", "connection": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:1/devstoreaccount1"}},
	"azure-servicebus":       {base: map[string]string{"queueName": "q"}, auth: map[string]string{"connection": "Endpoint=sb://127.0.0.1:1/;SharedAccessKeyName=k;SharedAccessKey=a2V5"}},
	"azure-pipelines":        {base: map[string]string{"poolID": "7"}, auth: map[string]string{"organizationURL": "http://127.0.0.1:1/org", "personalAccessToken": "t"}},
	"azure-eventhub": {base: map[string]string{"eventHubName": "h"}, auth: map[string]string{
		"connection":        "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true",
		"storageConnection": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1"}},
	"azure-blob": {base: map[string]string{"blobContainerName": "c", "connection": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1"}},
	"loki":       {base: map[string]string{"serverAddress": "http://127.0.0.1:1", "query": "sum(x)", "threshold": "5"}},
	"graphite":   {base: map[string]string{"serverAddress": "http://127.0.0.1:1", "query": "x", "queryTime": "-1Minutes"}},
	"datadog": {base: map[string]string{"query": "avg:x{*}", "queryValue": "5"},
		auth: map[string]string{"apiKey": "k", "appKey": "k"}},
	"new-relic": {base: map[string]string{"account": "1", "queryKey": "k", "nrql": "SELECT 1", "threshold": "5"}},
	"influxdb": {base: map[string]string{"serverURL": "http://127.0.0.1:1", "organizationName": "o", "query": "q", "thresholdValue": "5"},
		auth: map[string]string{"authToken": "t"}},
	"elasticsearch": {base: map[string]string{"addresses": "http://127.0.0.1:1", "username": "u", "password": "p", "index": "i",
		"searchTemplateName": "t", "valueLocation": "a", "targetValue": "5"}},
	"aws-sqs-queue":      {base: map[string]string{"queueURL": "http://127.0.0.1:1/000000000000/q", "awsRegion": "eu-west-1", "queueLength": "5"}, auth: map[string]string{"awsAccessKeyID": "a", "awsSecretAccessKey": "b"}},
	"aws-kinesis-stream": {base: map[string]string{"streamName": "s", "awsRegion": "eu-west-1", "shardCount": "2"}, auth: map[string]string{"awsAccessKeyID": "a", "awsSecretAccessKey": "b"}},
	"aws-dynamodb":       {base: map[string]string{"tableName": "t", "awsRegion": "eu-west-1", "keyConditionExpression": "#k = :v", "expressionAttributeNames": `{"#k":"k"}`, "expressionAttributeValues": `{":v":{"S":"x"}}`, "targetValue": "5"}, auth: map[string]string{"awsAccessKeyID": "a", "awsSecretAccessKey": "b"}},
	"aws-cloudwatch": {base: map[string]string{"namespace": "AWS/SQS", "metricName": "m", "dimensionName": "QueueName", "dimensionValue": "q",
		"targetMetricValue": "5", "metricStatPeriod": "1", "awsRegion": "eu-west-1"}, auth: map[string]string{"awsAccessKeyID": "a", "awsSecretAccessKey": "b"}},
	"gcp-stackdriver": {base: map[string]string{"projectId": "p", "filter": `metric.type = "x"`, "targetValue": "5"},
		auth: map[string]string{"GoogleApplicationCredentials": serviceAccountJSON()}},
	"etcd":                {base: map[string]string{"endpoints": "http://127.0.0.1:1", "watchKey": "k", "value": "5"}},
	"gcp-pubsub":          {base: map[string]string{"subscriptionName": "s", "value": "5"}, auth: map[string]string{"GoogleApplicationCredentials": serviceAccountJSON()}},
	"github-runner":       {base: map[string]string{"owner": "o", "runnerScope": "repo", "repos": "r", "targetWorkflowQueueLength": "1"}, auth: map[string]string{"personalAccessToken": "t"}},
	"kubernetes-workload": {base: map[string]string{"podSelector": "app=x", "value": "5"}},
	"beanstalkd":          {base: map[string]string{"server": "127.0.0.1:1", "tube": "t", "value": "5"}},
	"activemq": {base: map[string]string{"managementEndpoint": "127.0.0.1:1", "destinationName": "q", "brokerName": "b",
		"username": "u", "password": "p"}},
	"memory": {base: map[string]string{"value": "50"}},
	"solr":   {base: map[string]string{"host": "http://127.0.0.1:1", "collection": "c", "targetQueryValue": "5"}},
}

// serviceAccountJSON is a Google service-account key file with a freshly generated key, so that the client
// library parses it (it never signs anything here: the scaler connects lazily).
func serviceAccountJSON() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(map[string]string{"type": "service_account", "project_id": "p",
		"client_email": "a@p.iam.gserviceaccount.com", "private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestNumericMetadataIsFiniteAndInRange feeds every numeric metadata field of every registered scaler the values
// that once produced wrong targets (overflow to a negative quantity, a 0 target, NaN) and checks each is refused
// with an error naming the trigger type and the field, while a padded " 5 " is accepted as 5.
func TestNumericMetadataIsFiniteAndInRange(t *testing.T) {
	r := New()
	values := []string{"0", "-1", "NaN", "Inf", "-Inf", "1e-9", "9223372036854775808", "9223372036854775807", "1e400", "", " 5 "}
	for _, typ := range r.Types() {
		meta, ok := r.Metadata(typ)
		if !ok {
			t.Errorf("%s: no metadata description registered (call Registry.Describe in its Register)", typ)
			continue
		}
		valid, ok := validMetadata[typ]
		if !ok {
			t.Errorf("%s: no valid base metadata in this test; add one", typ)
			continue
		}
		build := func(t *testing.T, md map[string]string) error {
			t.Helper()
			return r.Check(context.Background(), scalers.TriggerConfig{Type: typ, Metadata: md, AuthParams: valid.auth, ObjectKind: "ScaledObject"})
		}
		t.Run(typ+"/base", func(t *testing.T) {
			if err := build(t, valid.base); err != nil {
				t.Fatalf("base metadata refused: %v", err)
			}
		})
		for _, f := range scalers.Fields(meta) {
			if !f.Numeric() {
				continue
			}
			for _, v := range values {
				t.Run(typ+"/"+f.Name+"="+v, func(t *testing.T) {
					md := scalertest.WithPairs(valid.base, f.Name, v)
					for _, k := range valid.unset[f.Name] {
						delete(md, k)
					}
					err := build(t, md)
					if _, crossField := valid.refused[f.Name]; crossField && v == " 5 " {
						if err == nil {
							t.Fatalf("want refused (%s), got accepted", valid.refused[f.Name])
						}
						return
					}
					if wantOK := accepts(f, v); wantOK {
						if err != nil {
							t.Fatalf("want accepted, got %v", err)
						}
						return
					}
					if err == nil {
						t.Fatalf("want refused, got accepted")
					}
					if msg := err.Error(); !strings.Contains(msg, typ+" trigger") || !strings.Contains(msg, f.Name+":") {
						t.Fatalf("error does not name the trigger type %q and field %q: %v", typ, f.Name, msg)
					}
				})
			}
		}
	}
}

// accepts states which of the test values a field takes: the finite, in-range ones; "1e-9" only where a tiny
// fraction means something (a float that is neither a target nor bounded below by a larger minimum).
func accepts(f scalers.Field, v string) bool {
	isInt := !f.Duration && f.Kind != reflect.Float32 && f.Kind != reflect.Float64
	switch v {
	case " 5 ":
		return (f.Max == nil || *f.Max >= 5) && (f.Min == nil || *f.Min <= 5)
	case "0":
		return !f.Target && (f.Min == nil || *f.Min <= 0)
	case "-1":
		return !f.Target && !f.Duration && f.Min == nil
	case "1e-9":
		return !isInt && !f.Target && (f.Min == nil || *f.Min <= 1e-9)
	}
	return false // NaN, ±Inf, 2^63, 2^63-1 (above MaxValue), 1e400 and "" never are
}

// TestResourceTargetBounds covers cpu/memory's value, a quantity string rather than a number field.
func TestResourceTargetBounds(t *testing.T) {
	r := New()
	for _, typ := range []string{"cpu", "memory"} {
		for _, tc := range []struct {
			value, metricType string
			ok                bool
		}{
			{"50", "Utilization", true},
			{" 50 ", "Utilization", true},
			{"0", "Utilization", false},
			{"-5", "Utilization", false},
			{"NaN", "Utilization", false},
			{"9223372036854775808", "Utilization", false},
			{"1e-9", "Utilization", false},
			{"500m", "AverageValue", true},
			{"1e-9", "AverageValue", false},
			{"0", "AverageValue", false},
			{"1e400", "AverageValue", false},
			{"9223372036854775807", "AverageValue", false},
			{"", "AverageValue", false},
		} {
			t.Run(typ+"/"+tc.metricType+"="+tc.value, func(t *testing.T) {
				_, err := r.New(context.Background(), scalers.TriggerConfig{Type: typ, ObjectKind: "ScaledObject",
					Metadata: map[string]string{"value": tc.value}, MetricType: autoscalingv2.MetricTargetType(tc.metricType)})
				if tc.ok != (err == nil) {
					t.Fatalf("want ok=%v, got %v", tc.ok, err)
				}
				if err != nil && (!strings.Contains(err.Error(), typ+" trigger") || !strings.Contains(err.Error(), "value")) {
					t.Fatalf("error does not name the trigger type and field: %v", err)
				}
			})
		}
	}
}
