package daemon

import (
	"fmt"
	"log/slog"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is the embedded MQTT broker of the default configuration, so that
// `palid serve` works on its own and `palid query` can reach it.
type Broker struct {
	srv *mochi.Server
	tcp *listeners.TCP
}

// StartBroker starts an in-process MQTT broker listening on addr
// (127.0.0.1:1883 by default; port 0 picks a free one). It accepts anonymous
// clients: keep it on loopback.
func StartBroker(addr string, log *slog.Logger) (*Broker, error) {
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Logger:       log.With("component", "broker").WithGroup("broker"),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "palid", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker on %s: %w", addr, err)
	}
	go srv.Serve()
	return &Broker{srv: srv, tcp: tcp}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is the broker's address as a client URL.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Close stops the broker.
func (b *Broker) Close() error { return b.srv.Close() }
