package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestConfigFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", env: map[string]string{"LIST_NAME": "q"}, want: config{Address: "127.0.0.1:6379", List: "q", Work: 200 * time.Millisecond}},
		{name: "all set", env: map[string]string{"LIST_NAME": "q", "REDIS_ADDRESS": "redis:6380", "WORK_DURATION": "1s", "HEALTH_ADDRESS": ":8080"},
			want: config{Address: "redis:6380", List: "q", Work: time.Second, HealthAdd: ":8080"}},
		{name: "missing list", env: map[string]string{}, wantErr: "LIST_NAME"},
		{name: "burn needs no list", env: map[string]string{"BURN_CPU": "true"}, want: config{Address: "127.0.0.1:6379", Work: 200 * time.Millisecond, Burn: true}},
		{name: "burn off still needs a list", env: map[string]string{"BURN_CPU": "false"}, wantErr: "LIST_NAME"},
		{name: "bad burn", env: map[string]string{"BURN_CPU": "lots", "LIST_NAME": "q"}, wantErr: "BURN_CPU"},
		{name: "bad duration", env: map[string]string{"LIST_NAME": "q", "WORK_DURATION": "fast"}, wantErr: "WORK_DURATION"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("configFromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestWorkerProcessesItemsAndStopsOnCancel(t *testing.T) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	list := "demo-worker-test-" + hex.EncodeToString(b)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	ctx := context.Background()
	defer rdb.Del(ctx, list)
	if err := rdb.RPush(ctx, list, "one", "two", "three").Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	core, logs := observer.New(zap.InfoLevel)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(wctx, config{Address: "127.0.0.1:6379", List: list, Work: time.Millisecond}, zap.New(core))
	}()
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessage("processed item").Len() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("processed %d items, want 3", logs.FilterMessage("processed item").Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var items []string
	for _, e := range logs.FilterMessage("processed item").All() {
		items = append(items, e.ContextMap()["item"].(string))
	}
	if strings.Join(items, ",") != "one,two,three" {
		t.Errorf("items = %v, want one,two,three in order", items)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel (SIGTERM) = %v, want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop after cancel")
	}
}

func TestBurnStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, config{Burn: true}, zap.NewNop()) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("burning worker did not stop on cancel")
	}
}
