// grpc-redis-legacy is grpc-redis (same flags, environment, answers and shutdown)
// built from dependencies that Go 1.18 accepts, so that gccgo 12 (Go 1.18, without
// generics) builds it and gc and gccgo can be compared on a real service.
//
// Each pin is the newest release that gccgo 12 compiles and links and whose module
// graph keeps every go.mod at go 1.18 or lower. The go command that drives gccgo
// applies its own release tags, so gccgo 12 compiles files tagged go1.20 and later too:
//
//   - github.com/redis/go-redis/v9 v9.2.1: v9.3.0 adds a generic helper (internal/util.ToPtr);
//   - google.golang.org/grpc v1.51.0: v1.52.0 needs a google.golang.org/genproto that
//     declares go 1.19, and v1.56.0 needs golang.org/x/sys v0.7.0, whose unix.Prlimit
//     links to syscall.prlimit (Go 1.21), missing from gccgo 12's libgo;
//   - golang.org/x/net v0.8.0 (the HPACK fix, CVE-2022-41723, in what grpc's HTTP/2
//     framer uses) is the newest x/net that needs no x/sys beyond v0.6.0;
//   - google.golang.org/protobuf v1.31.0: v1.32.0 adds go1.21-tagged files that call
//     unsafe.String and unsafe.StringData, which gccgo 12 lacks.
//
// go-redis v9.2.1 has no Options.DialerRetries: its pool dials once per attempt, so a
// health check already reports a failed dial at once, as grpc-redis's does.
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
			Addr:         *redisAddr,
			DialTimeout:  pingTimeout,
			ReadTimeout:  pingTimeout,
			WriteTimeout: pingTimeout,
			MaxRetries:   -1, // a health check reports why it failed, at once: no retry
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
		w.Write([]byte("slimlab grpc-redis-legacy\n"))
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
