// Package mqtt is palid's MQTT API (DESIGN.md §4): the request and response
// payloads and their strict parser, a paho client that receives questions
// and standing-question settings and publishes responses, answers,
// status, info and snapshots, Home Assistant device discovery, the
// availability topic and will, and an on-disk outbox so that nothing
// answered while the broker is away is lost.
//
// The package imports nothing of palid's; the daemon wires it: it passes
// Handlers.Enqueue (which must not block; a false return is answered
// "busy" at once) and calls Respond, PublishAnswer and the other
// publishing methods.
//
// Delivery: QoS 1 everywhere, a persistent session (clean session off)
// with paho's file store in the state directory, ordered delivery off.
// Every response and answer is first appended (fsynced) to the outbox,
// then published only while the connection is up, in order; an entry is
// deleted when paho completes its publish token, which happens on the
// broker's PUBACK or when paho takes the message over for re-sending from
// its own store after a reconnection. Entries that paho's store holds from
// a previous run are dropped from the outbox at start, since paho re-sends
// them itself: so neither store delivers a message twice.
package mqtt
