package taskctl

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// DefaultListen is where taskctl serve listens without --listen: loopback only.
const DefaultListen = "127.0.0.1:8421"

func serveCommand() *command {
	var listen, certFile, keyFile string
	return &command{
		name: "serve", args: "[--listen ADDR] [--tls-cert F --tls-key F]", summary: "serve the web console (loopback only unless TLS is given)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&listen, "listen", DefaultListen, "address to listen on; a non-loopback address needs --tls-cert and --tls-key")
			fs.StringVar(&certFile, "tls-cert", "", "TLS certificate file (PEM), to serve HTTPS")
			fs.StringVar(&keyFile, "tls-key", "", "TLS private key file (PEM)")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("serve takes no arguments")
			}
			if (certFile == "") != (keyFile == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			tls := certFile != ""
			if err := checkListen(listen, tls); err != nil {
				return err
			}
			token, made := e.getenv(EnvConsoleToken), false
			if token == "" {
				token, made = rand.Text()+rand.Text(), true
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(e.stderr, nil))
			console, err := NewConsole(in, ConsoleConfig{Token: task.NewSecret(token), Secure: tls, Logger: logger})
			if err != nil {
				return usagef("%v", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			scheme := "http"
			if tls {
				scheme = "https"
			}
			fmt.Fprintf(e.stderr, "taskctl console on %s://%s/\n", scheme, ln.Addr())
			if made {
				fmt.Fprintf(e.stderr, "log in with this token (set %s to choose one): %s\n", EnvConsoleToken, token)
			} else {
				fmt.Fprintf(e.stderr, "log in with the token of %s\n", EnvConsoleToken)
			}
			return serveUntil(ctx, ln, console, certFile, keyFile)
		},
	}
}

// checkListen refuses a listen address off loopback without TLS: the token and the session
// cookie would cross the network in clear.
func checkListen(addr string, tls bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--listen %s: %v (give host:port, e.g. %s)", addr, err, DefaultListen)
	}
	if tls {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usagef("--listen %s is not a loopback address: serving the console beyond this machine needs --tls-cert and --tls-key (or a TLS proxy in front of a loopback listener), so that the token and session never cross the network in clear", addr)
}

// serveUntil serves h on ln until ctx ends, then shuts down, letting requests in flight
// finish for up to 5 seconds.
func serveUntil(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string) error {
	// The write timeout leaves room for a bulk requeue of a long dead-letter stream, which
	// answers only when done.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Minute}
	done := make(chan error, 1)
	go func() {
		if certFile != "" {
			done <- srv.ServeTLS(ln, certFile, keyFile)
			return
		}
		done <- srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
