// Command tidal-demo-worker is the small worker the demo and the virtual node's process backend run: it pops
// items from a Redis list (REDIS_ADDRESS, LIST_NAME), simulates WORK_DURATION of work per item, logs each item,
// and exits 0 on SIGTERM once the item in hand is done. With BURN_CPU it pops nothing and keeps one CPU busy
// instead (a load for an HPA on CPU utilization). --version prints the version and commit.
//
// Environment:
//
//	REDIS_ADDRESS    host:port of Redis (default 127.0.0.1:6379)
//	REDIS_PASSWORD   optional; never logged
//	LIST_NAME        the list to pop from (required)
//	WORK_DURATION    simulated work per item, a Go duration (default 200ms)
//	HEALTH_ADDRESS   optional host:port serving /healthz (200 once Redis answered a PING; at once with BURN_CPU)
//	BURN_CPU         "true": spin one CPU until SIGTERM, no Redis (LIST_NAME not needed); "false" or unset: pop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/tidalscale/tidal/internal/version"
)

func main() {
	fs := flag.NewFlagSet("tidal-demo-worker", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and commit, then exit")
	_ = fs.Parse(os.Args[1:]) // ExitOnError: a bad flag exits 2 with usage
	if *showVersion {
		fmt.Println(version.String("tidal-demo-worker"))
		return
	}
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tidal-demo-worker:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		os.Exit(2)
	}
	if err := run(ctx, cfg, log); err != nil {
		log.Error("worker failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}

// config is the worker's configuration.
type config struct {
	Address   string
	Password  string
	List      string
	Work      time.Duration
	HealthAdd string
	Burn      bool
}

func configFromEnv(getenv func(string) string) (config, error) {
	c := config{Address: getenv("REDIS_ADDRESS"), Password: getenv("REDIS_PASSWORD"), List: getenv("LIST_NAME"),
		HealthAdd: getenv("HEALTH_ADDRESS"), Work: 200 * time.Millisecond}
	if c.Address == "" {
		c.Address = "127.0.0.1:6379"
	}
	if b := getenv("BURN_CPU"); b != "" {
		burn, err := strconv.ParseBool(b)
		if err != nil {
			return c, fmt.Errorf("BURN_CPU: want true or false, got %q", b)
		}
		c.Burn = burn
	}
	if c.List == "" && !c.Burn {
		return c, errors.New("LIST_NAME: must be set")
	}
	if w := getenv("WORK_DURATION"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil || d < 0 {
			return c, fmt.Errorf("WORK_DURATION: want a non-negative duration such as 200ms, got %q", w)
		}
		c.Work = d
	}
	return c, nil
}

func run(ctx context.Context, cfg config, log *zap.Logger) error {
	rdb := goredis.NewClient(&goredis.Options{Addr: cfg.Address, Password: cfg.Password})
	defer rdb.Close()
	var healthy atomic.Bool
	if cfg.HealthAdd != "" {
		srv := &http.Server{Addr: cfg.HealthAdd, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !healthy.Load() {
				http.Error(w, "redis not reachable yet", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("health server", zap.Error(err))
			}
		}()
		defer srv.Close()
	}
	if cfg.Burn {
		healthy.Store(true)
		log.Info("burning one CPU until SIGTERM")
		burn(ctx)
		log.Info("SIGTERM: stopping")
		return nil
	}
	log.Info("worker started", zap.String("redis", cfg.Address), zap.String("list", cfg.List), zap.Duration("work", cfg.Work))
	processed := 0
	for {
		if ctx.Err() != nil {
			log.Info("SIGTERM: stopping", zap.Int("processed", processed))
			return nil
		}
		res, err := rdb.BLPop(ctx, time.Second, cfg.List).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			healthy.Store(true)
			continue
		case ctx.Err() != nil:
			log.Info("SIGTERM: stopping", zap.Int("processed", processed))
			return nil
		case err != nil:
			healthy.Store(false)
			log.Warn("pop failed, retrying", zap.String("list", cfg.List), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		healthy.Store(true)
		item := res[1]
		// The item in hand is finished even if SIGTERM arrives meanwhile.
		time.Sleep(cfg.Work)
		processed++
		log.Info("processed item", zap.String("list", cfg.List), zap.String("item", item), zap.Int("processed", processed))
	}
}

// burn keeps one CPU busy until ctx is done.
func burn(ctx context.Context) {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}
