// Package systemd makes palid a well-behaved systemd service: sd_notify
// (READY, STATUS, WATCHDOG, STOPPING, RELOADING), a log/slog handler for the
// journal, and socket activation. It imports nothing else of palid's.
//
// Everything degrades to a no-op outside systemd: without NOTIFY_SOCKET the
// notifier sends nothing, and without a journal stream logs are plain text.
package systemd

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to the service manager over NOTIFY_SOCKET.
// The zero value is not usable; use NewNotifier.
type Notifier struct {
	mu     sync.Mutex
	status string
	send   func(state string) (bool, error)
}

// NewNotifier returns a notifier bound to the environment's NOTIFY_SOCKET
// (a no-op when there is none).
func NewNotifier() *Notifier {
	return &Notifier{send: func(state string) (bool, error) { return daemon.SdNotify(false, state) }}
}

func (n *Notifier) notify(lines ...string) error {
	_, err := n.send(strings.Join(lines, "\n"))
	return err
}

// Ready tells systemd that start-up (or a reload) is complete, with a status line.
func (n *Notifier) Ready(status string) error {
	n.mu.Lock()
	n.status = status
	n.mu.Unlock()
	return n.notify(daemon.SdNotifyReady, "STATUS="+oneLine(status))
}

// Status sets the human-readable status line shown by systemctl status,
// sending only when it changed.
func (n *Notifier) Status(status string) error {
	n.mu.Lock()
	same := status == n.status
	n.status = status
	n.mu.Unlock()
	if same {
		return nil
	}
	return n.notify("STATUS=" + oneLine(status))
}

// Stopping tells systemd that shutdown has begun.
func (n *Notifier) Stopping() error {
	return n.notify(daemon.SdNotifyStopping, "STATUS=stopping")
}

// Reloading tells systemd that the configuration is being reloaded
// (Type=notify-reload wants MONOTONIC_USEC with it); follow with Ready.
func (n *Notifier) Reloading() error {
	return n.notify(daemon.SdNotifyReloading, daemon.SdNotifyMonotonicUsec(), "STATUS=reloading configuration")
}

// Watchdog sends one keep-alive.
func (n *Notifier) Watchdog() error {
	return n.notify(daemon.SdNotifyWatchdog)
}

// WatchdogInterval is the interval systemd expects keep-alives at
// (WATCHDOG_USEC), or 0 when the watchdog is off.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

// RunWatchdog sends WATCHDOG=1 every interval/2 while healthy reports true,
// until ctx ends. When healthy reports false the keep-alive is withheld, so
// that systemd restarts a daemon whose worker or capture loop is stuck.
// interval <= 0 returns at once.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, healthy func() bool) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if healthy() {
				n.Watchdog()
			}
		}
	}
}

// Progress tells whether a counter moved: it is the watchdog's view of a
// loop. A loop is healthy when its counter advanced within the window, or
// when it is idle (not expected to move).
type Progress struct {
	mu     sync.Mutex
	last   uint64
	moved  time.Time
	window time.Duration
	now    func() time.Time
}

// NewProgress returns a progress tracker that calls a loop stuck when its
// counter has not moved for window.
func NewProgress(window time.Duration) *Progress {
	return &Progress{window: window, now: time.Now, moved: time.Now()}
}

// Healthy records counter and reports whether the loop is making progress;
// idle loops (busy == false) are always healthy.
func (p *Progress) Healthy(counter uint64, busy bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if counter != p.last || !busy {
		p.last = counter
		p.moved = now
		return true
	}
	return now.Sub(p.moved) < p.window
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
