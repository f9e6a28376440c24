// Command configserver is a stand-in for config-server-sse, for demos and
// tests: it serves the application-<env>.yml files of a directory with the
// same HTTP API. See package configserver.
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
	"syscall"
	"time"

	"github.com/sseconfd/sseconfd/configserver"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address; port 0 picks a free port")
	configs := flag.String("configs", ".", "directory of application-<env>.yml files")
	keepAlive := flag.Duration("keepalive", 15*time.Second, "period of the keep-alive comment on streams")
	addrFile := flag.String("addr-file", "", "write the address actually listened on to this file")
	flag.Parse()

	if err := run(*addr, *configs, *keepAlive, *addrFile); err != nil {
		fmt.Fprintln(os.Stderr, "configserver:", err)
		os.Exit(1)
	}
}

func run(addr, configs string, keepAlive time.Duration, addrFile string) error {
	srv := configserver.New()
	srv.KeepAlive = keepAlive
	if err := srv.LoadDir(configs); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	log.Printf("configserver listening on http://%s, configs from %s", ln.Addr(), configs)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(shutdown)
		hs.Close() // streams never end by themselves
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
