package amqpfake

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/go-amqp"
)

// TestCodecThroughGoAMQP: messages this codec encodes decode with go-amqp (the SDK's AMQP library), and
// messages go-amqp encodes decode here, value for value.
func TestCodecThroughGoAMQP(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_123).UTC()
	value := map[string]any{
		"name": "hub", "partition_ids": Array{"0", "1", "2"}, "created_at": at, "partition_count": int32(3),
		"begin_sequence_number": int64(-1), "big": int64(1) << 40, "small": int32(-5), "large": int32(70000),
		"is_partition_empty": true, "ratio": 0.5, "bin": []byte{1, 2, 3}, "sym": Symbol("s"), "long": strings.Repeat("x", 300),
		"u32": uint32(300), "u64": uint64(1) << 33, "list": []any{"a", int64(2)}, "nil": nil,
	}
	b, err := EncodeMessage(Message{
		Properties:            []any{"id-1", nil, nil, nil, "reply-here", "corr-1"},
		ApplicationProperties: map[string]any{"status-code": int32(200), "status-description": "OK"},
		Value:                 value,
	})
	if err != nil {
		t.Fatal(err)
	}
	var m amqp.Message
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatalf("go-amqp cannot decode: %v", err)
	}
	if m.Properties == nil || m.Properties.MessageID != "id-1" || m.Properties.CorrelationID != "corr-1" || *m.Properties.ReplyTo != "reply-here" {
		t.Errorf("properties = %+v", m.Properties)
	}
	if m.ApplicationProperties["status-code"] != int32(200) || m.ApplicationProperties["status-description"] != "OK" {
		t.Errorf("application properties = %v", m.ApplicationProperties)
	}
	got, ok := m.Value.(map[string]any)
	if !ok {
		t.Fatalf("value = %T", m.Value)
	}
	want := map[string]any{
		"name": "hub", "partition_ids": []string{"0", "1", "2"}, "created_at": at, "partition_count": int32(3),
		"begin_sequence_number": int64(-1), "big": int64(1) << 40, "small": int32(-5), "large": int32(70000),
		// go-amqp hands a symbol in a map value to the application as a string.
		"is_partition_empty": true, "ratio": 0.5, "bin": []byte{1, 2, 3}, "sym": "s", "long": strings.Repeat("x", 300),
		"u32": uint32(300), "u64": uint64(1) << 33, "list": []any{"a", int64(2)}, "nil": nil,
	}
	for k, w := range want {
		if wt, ok := w.(time.Time); ok {
			if gt, _ := got[k].(time.Time); !gt.Equal(wt) {
				t.Errorf("%s: go-amqp decoded %v, want %v", k, got[k], w)
			}
			continue
		}
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: go-amqp decoded %#v (%T), want %#v", k, got[k], got[k], w)
		}
	}

	// The other way: a request as the SDK builds it.
	reply := "reply-to-x"
	req := &amqp.Message{
		Properties:            &amqp.MessageProperties{MessageID: "m-7", ReplyTo: &reply},
		ApplicationProperties: map[string]any{"operation": "READ", "type": "com.microsoft:partition", "server-timeout": uint32(5000), "expiration": at},
		Value:                 "SharedAccessSignature sr=x",
	}
	rb, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dm, err := DecodeMessage(rb)
	if err != nil {
		t.Fatal(err)
	}
	if dm.prop(0) != "m-7" || dm.prop(4) != reply || dm.Value != "SharedAccessSignature sr=x" ||
		dm.ApplicationProperties["operation"] != "READ" || dm.ApplicationProperties["server-timeout"] != uint32(5000) ||
		dm.ApplicationProperties["expiration"] != at {
		t.Errorf("decoded %+v", dm)
	}
}

func TestDecodeRejectsTruncatedAndUnknown(t *testing.T) {
	t.Parallel()
	full, err := Encode(nil, map[string]any{"k": "value", "n": int64(1) << 50})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(full); i++ {
		if _, _, err := Decode(full[:i]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(full))
		}
	}
	if _, _, err := Decode([]byte{0x01}); err == nil {
		t.Fatal("unknown format code accepted")
	}
}

const testKey = "dGVzdC1ldmVudC1odWJzLWtleS1vbmx5LWZvci10ZXN0cw=="

// TestSDKReadsProperties drives the fake with the Azure SDK's ProducerClient over AMQP: hub and partition
// properties, a missing hub (404), and a wrong key (401).
func TestSDKReadsProperties(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Key: testKey})
	last := time.UnixMilli(1_700_000_000_000).UTC()
	s.SetHub("orders", Partition{Begin: 0, Last: 41, LastEnqueued: last}, Partition{Begin: 0, Last: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	retry := azeventhubs.RetryOptions{MaxRetries: -1}

	pc, err := azeventhubs.NewProducerClientFromConnectionString(s.ConnectionString(testKey, "orders"), "", &azeventhubs.ProducerClientOptions{RetryOptions: retry})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	props, err := pc.GetEventHubProperties(ctx, nil)
	if err != nil {
		t.Fatalf("GetEventHubProperties: %v", err)
	}
	if props.Name != "orders" || !reflect.DeepEqual(props.PartitionIDs, []string{"0", "1"}) || props.CreatedOn.IsZero() {
		t.Errorf("hub properties = %+v", props)
	}
	p0, err := pc.GetPartitionProperties(ctx, "0", nil)
	if err != nil {
		t.Fatalf("GetPartitionProperties: %v", err)
	}
	if p0.PartitionID != "0" || p0.LastEnqueuedSequenceNumber != 41 || p0.BeginningSequenceNumber != 0 || p0.IsEmpty || !p0.LastEnqueuedOn.Equal(last) {
		t.Errorf("partition 0 = %+v", p0)
	}
	p1, err := pc.GetPartitionProperties(ctx, "1", nil)
	if err != nil || !p1.IsEmpty || p1.LastEnqueuedSequenceNumber != -1 {
		t.Errorf("partition 1 = %+v, %v", p1, err)
	}
	// Many requests on one connection: flow control keeps granting credit and window.
	for i := 0; i < 150; i++ {
		if _, err := pc.GetPartitionProperties(ctx, "0", nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, err := pc.GetPartitionProperties(ctx, "9", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing partition: err = %v, want a 404", err)
	}

	missing, err := azeventhubs.NewProducerClientFromConnectionString(s.ConnectionString(testKey, "absent"), "", &azeventhubs.ProducerClientOptions{RetryOptions: retry})
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close(ctx)
	if _, err := missing.GetEventHubProperties(ctx, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing hub: err = %v, want a 404", err)
	}

	wrong := "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
	bad, err := azeventhubs.NewProducerClientFromConnectionString(s.ConnectionString(wrong, "orders"), "", &azeventhubs.ProducerClientOptions{RetryOptions: retry})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close(ctx)
	_, err = bad.GetEventHubProperties(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: err = %v, want a 401", err)
	}
	if err != nil && (strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testKey)) {
		t.Errorf("error repeats a key: %v", err)
	}
}
