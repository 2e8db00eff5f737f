// Package daemon is palid serve: configuration, lifecycle, the query queue
// and its worker, the triggers (MQTT, interval, GPIO) and the local HTTP API.
// It is the only package that wires capture, runtime and mqtt together.
package daemon
