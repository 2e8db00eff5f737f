package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/palid/palid/daemon"
	palirt "github.com/palid/palid/runtime"
	"github.com/palid/palid/systemd"
)

func init() {
	register("serve", "run the daemon (camera, model, MQTT API)", runServe)
}

// serveFlags are the flags of palid serve; set ones override the file.
type serveFlags struct {
	config, model, source, broker, device, http, stateDir string
	verbose                                               bool
}

func runServe(args []string) error {
	var f serveFlags
	fs := newFlags("serve", "")
	fs.StringVar(&f.config, "config", "", "configuration file (YAML); none: the embedded default")
	fs.StringVar(&f.model, "model", "", "model directory (default: the bundled model)")
	fs.StringVar(&f.source, "source", "", "frame source: v4l2:/dev/video0, file:PATH, dir:PATH, http:URL, ffmpeg:URL, synthetic:SEED")
	fs.StringVar(&f.broker, "broker", "", "MQTT broker URL (tcp://host:1883); none: the embedded broker")
	fs.StringVar(&f.device, "device", "", "device id (MQTT base topic palid/<id>)")
	fs.StringVar(&f.http, "http", "", "HTTP API listen address")
	fs.StringVar(&f.stateDir, "state-dir", "", "state directory (MQTT stores, outbox)")
	fs.BoolVar(&f.verbose, "v", false, "debug logging")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInputf("unexpected argument %q", fs.Arg(0))
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := systemd.NewLogger(os.Stderr, level)
	slog.SetDefault(log)

	cfg, err := loadServeConfig(f)
	if err != nil {
		return badInput(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	notifier := systemd.NewNotifier()
	var model *palirt.Model
	defer func() {
		if model != nil {
			model.Close()
		}
	}()
	for {
		if model == nil {
			notifier.Status("loading model " + cfg.Model)
			model, err = palirt.Load(cfg.Model, palirt.Options{Threads: cfg.Threads})
			if err != nil {
				return fmt.Errorf("model %s: %w", cfg.Model, err)
			}
		}
		d, err := daemon.New(cfg, daemon.Options{Logger: log, Notifier: notifier, Version: version, Model: model})
		if err != nil {
			return badInput(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(runCtx) }()
		stopping := context.AfterFunc(ctx, func() { notifier.Stopping() })
		reload := false
		var old *palirt.Model // a model replaced by the reload, closed once unused
	wait:
		for {
			select {
			case err := <-done:
				cancel()
				stopping()
				if err != nil {
					return err
				}
				if old != nil {
					old.Close()
				}
				if !reload {
					return nil
				}
				break wait
			case <-hup:
				next, err := loadServeConfig(f)
				if err != nil {
					log.Error("reload: keeping the running configuration", "err", err)
					continue
				}
				notifier.Reloading()
				log.Info("reloading configuration", "file", f.config)
				if next.Model != cfg.Model {
					old, model = model, nil
				}
				cfg, reload = next, true
				cancel()
			}
		}
	}
}

// loadServeConfig reads the configuration file (or takes the embedded
// default) and applies the flags.
func loadServeConfig(f serveFlags) (daemon.Config, error) {
	cfg := daemon.DefaultConfig()
	if f.config != "" {
		var err error
		if cfg, err = daemon.LoadConfig(f.config); err != nil {
			return cfg, err
		}
	}
	if f.model != "" {
		cfg.Model = f.model
	}
	if f.source != "" {
		cfg.Source = f.source
	}
	if f.broker != "" {
		cfg.Broker.URL = f.broker
	}
	if f.device != "" {
		cfg.DeviceID = f.device
	}
	if f.http != "" {
		cfg.HTTP.Addr = f.http
	}
	if f.stateDir != "" {
		cfg.StateDir = f.stateDir
	}
	if cfg.Model == "" {
		dir, err := defaultModelDir()
		if err != nil {
			return cfg, err
		}
		cfg.Model = dir
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if _, err := os.Stat(cfg.Model); err != nil {
		return cfg, fmt.Errorf("key model: %s: %w", cfg.Model, errors.Unwrap(err))
	}
	return cfg, nil
}
