// Command flagd is the planflag service: it tells call-handling systems
// whether a caller has an urgent care plan (POST /v1/lookup). `flagd lookup`
// is its batch form.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flagd:", err)
			os.Exit(1)
		}
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "lookup" {
		return runLookup(args[1:], os.Stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "audit" {
		return runAudit(args[1:], stdout, stderr)
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("-log.level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	m := &Main{Config: cfg, Log: log, Stdout: stdout}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reads the clients and link-key files again (Main.Reload),
	// from the start: a hangup must never end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Run(ctx); err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-hup:
				_ = m.Reload() // logged; what was read before stays in force
			case <-ctx.Done():
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		stop() // a second signal ends the process the default way, mid-shutdown
		log.Info("signal received; shutting down")
		return m.Close()
	case err := <-m.Failed():
		stop()
		log.Info("plan source cannot load; shutting down")
		return errors.Join(err, m.Close())
	}
}
