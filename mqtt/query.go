package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Query asks the palid device deviceID through the broker at brokerURL and
// waits for its response (the client side of the API, for `palid query`).
func Query(ctx context.Context, brokerURL, deviceID string, req Request) (Response, error) {
	if err := ValidateDeviceID(deviceID); err != nil {
		return Response{}, err
	}
	return QueryBroker(ctx, Broker{URL: brokerURL}, DefaultBaseTopic(deviceID), req)
}

// QueryBroker is Query with full connection settings and a base topic. It
// subscribes to <p>/response/ask, publishes req on <p>/request/ask with a
// fresh transaction when req has none, and returns the response carrying
// that transaction, or ctx's error.
func QueryBroker(ctx context.Context, b Broker, baseTopic string, req Request) (Response, error) {
	if err := ValidateTopicPrefix("base topic", baseTopic); err != nil {
		return Response{}, err
	}
	tlsCfg, err := b.tlsConfig()
	if err != nil {
		return Response{}, err
	}
	if req.Transaction == "" {
		req.Transaction = randomID()
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	t := NewTopics(baseTopic)
	opts := paho.NewClientOptions().
		AddBroker(b.URL).
		SetClientID("palid-query-" + randomID()).
		SetUsername(b.Username).
		SetPassword(b.Password).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetOrderMatters(false)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	pc := paho.NewClient(opts)
	if err := wait(ctx, pc.Connect()); err != nil {
		return Response{}, fmt.Errorf("connect to %s: %w", b.URL, err)
	}
	defer pc.Disconnect(100)

	got := make(chan Response, 1)
	handler := func(_ paho.Client, m paho.Message) {
		var r Response
		if json.Unmarshal(m.Payload(), &r) != nil || r.Transaction != req.Transaction {
			return
		}
		select {
		case got <- r:
		default:
		}
	}
	if err := wait(ctx, pc.Subscribe(t.ResponseAsk, 1, handler)); err != nil {
		return Response{}, fmt.Errorf("subscribe to %s: %w", t.ResponseAsk, err)
	}
	if err := wait(ctx, pc.Publish(t.RequestAsk, 1, false, payload)); err != nil {
		return Response{}, fmt.Errorf("publish to %s: %w", t.RequestAsk, err)
	}
	select {
	case r := <-got:
		return r, nil
	case <-ctx.Done():
		return Response{}, fmt.Errorf("no response from %s: %w", baseTopic, ctx.Err())
	}
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// randomID is 16 random hex digits.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
