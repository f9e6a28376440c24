package agent_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/sseconfd/sseconfd/agent"
	"github.com/sseconfd/sseconfd/configserver"
)

// Follow calls the handler with each new settings snapshot of one
// environment, reconnecting as needed, until the context is cancelled.
func ExampleFollow() {
	// A stand-in config server on loopback, with settings for "dev".
	server := configserver.New()
	server.Set("dev", []byte(`{"ball_color": "blue", "ball_size": 25}`))
	srv := httptest.NewServer(server)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := agent.Follow(ctx, srv.URL, "dev", func(s agent.Snapshot) {
		fmt.Println("ball_color =", s.Settings["ball_color"])
		fmt.Println("ball_size =", s.Settings["ball_size"])
		cancel() // one snapshot is enough here
	})
	fmt.Println(err)
	// Output:
	// ball_color = blue
	// ball_size = 25
	// context canceled
}

// A Stream sets every option the config file has: TLS, tokens, backoff,
// size limits. Events reports connection changes, for a health check.
func ExampleStream() {
	server := configserver.New()
	server.Set("dev", []byte(`{"port": 8080}`))
	srv := httptest.NewServer(server)
	defer srv.Close()

	jitter := true
	s := &agent.Stream{
		Source: agent.SourceConfig{URL: srv.URL, Env: "dev", MaxEventBytes: 1 << 20},
		Backoff: agent.BackoffConfig{
			Min: agent.Duration{Duration: 500 * time.Millisecond}, Max: agent.Duration{Duration: 30 * time.Second},
			Factor: 2, Jitter: &jitter, MaxRetries: 10,
		},
		Events: func(ev agent.StreamEvent) {
			if ev.Connected && ev.Rejected == "" {
				fmt.Println("connected")
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Run(ctx, func(snap agent.Snapshot) {
		fmt.Println("port =", snap.Settings["port"])
		cancel()
	})
	// Output:
	// connected
	// port = 8080
}
