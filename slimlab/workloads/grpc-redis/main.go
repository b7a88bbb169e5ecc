// grpc-redis is a small but realistic microservice: the heavy-dependency workload.
//
// It serves HTTP (GET /healthz) and gRPC (the standard health service,
// grpc.health.v1.Health) and links a Redis client (go-redis). Redis is optional:
//
//   - without a Redis address (-redis-addr, default $REDIS_ADDR) the service is
//     healthy as soon as it listens: /healthz answers 200 "ok\n" and the gRPC
//     health check of the server ("") answers SERVING;
//   - with one, every health check pings Redis (at most 250 ms): when Redis
//     answers, /healthz answers 200 "ok redis=PONG\n" and gRPC says SERVING;
//     when it does not, /healthz answers 503 "redis: <error>\n" and gRPC says
//     NOT_SERVING.
//
// Both listeners are opened before either server starts, so once /healthz
// answers the gRPC port accepts connections too. It listens on -addr (HTTP,
// default $ADDR or :$PORT or :8080) and -grpc-addr (default $GRPC_ADDR or :9090),
// and on SIGTERM or SIGINT stops both servers gracefully and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const pingTimeout = 250 * time.Millisecond

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func defaultHTTPAddr() string {
	if p := os.Getenv("PORT"); p != "" && os.Getenv("ADDR") == "" {
		return ":" + p
	}
	return envOr("ADDR", ":8080")
}

// readiness tells whether the service can do its work: it pings Redis when one is configured.
type readiness struct {
	rdb *redis.Client // nil: no Redis configured
}

// check returns the Redis reply ("" without Redis) or why the service is not ready.
func (r readiness) check(ctx context.Context) (string, error) {
	if r.rdb == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	reply, err := r.rdb.Ping(ctx).Result()
	if err != nil {
		return "", fmt.Errorf("redis: %w", err)
	}
	return reply, nil
}

// healthServer is the standard gRPC health service whose Check asks readiness each
// time; Watch and List serve the status last seen by a Check.
type healthServer struct {
	*health.Server
	ready readiness
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if req.GetService() == "" {
		status := healthpb.HealthCheckResponse_SERVING
		if _, err := h.ready.check(ctx); err != nil {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		h.SetServingStatus("", status)
	}
	return h.Server.Check(ctx, req)
}

func main() {
	httpAddr := flag.String("addr", defaultHTTPAddr(), "HTTP listen address (GET /healthz)")
	grpcAddr := flag.String("grpc-addr", envOr("GRPC_ADDR", ":9090"), "gRPC listen address (grpc.health.v1.Health)")
	redisAddr := flag.String("redis-addr", os.Getenv("REDIS_ADDR"), "Redis address host:port; empty: no Redis")
	flag.Parse()

	ready := readiness{}
	if *redisAddr != "" {
		ready.rdb = redis.NewClient(&redis.Options{
			Addr:          *redisAddr,
			DialTimeout:   pingTimeout,
			ReadTimeout:   pingTimeout,
			WriteTimeout:  pingTimeout,
			DialerRetries: 1,  // one dial per attempt: a health check reports why it failed, at once
			MaxRetries:    -1, // and does not retry the command either
		})
		defer ready.rdb.Close()
	}

	httpLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatalf("http listen: %v", err)
	}
	grpcLn, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatalf("grpc listen: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		reply, err := ready.check(r.Context())
		switch {
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%v\n", err)
		case ready.rdb != nil:
			fmt.Fprintf(w, "ok redis=%s\n", reply)
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("slimlab grpc-redis\n"))
	})
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	grpcSrv := grpc.NewServer()
	hs := &healthServer{Server: health.NewServer(), ready: ready}
	healthpb.RegisterHealthServer(grpcSrv, hs)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	errc := make(chan error, 2)
	go func() {
		if err := httpSrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	go func() {
		if err := grpcSrv.Serve(grpcLn); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	}()

	select {
	case err := <-errc:
		log.Printf("serve: %v", err)
		os.Exit(1)
	case <-ctx.Done():
	}

	// Graceful stop of both servers at once, bounded: in-flight requests finish.
	hs.Shutdown() // health watchers see NOT_SERVING before the server goes away
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var httpErr error
	wg.Add(2)
	go func() { defer wg.Done(); httpErr = httpSrv.Shutdown(shutdown) }()
	go func() {
		defer wg.Done()
		done := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-shutdown.Done():
			grpcSrv.Stop()
		}
	}()
	wg.Wait()
	if httpErr != nil {
		log.Printf("http shutdown: %v", httpErr)
		os.Exit(1)
	}
}
