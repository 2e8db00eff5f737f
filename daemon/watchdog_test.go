package daemon

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/palid/palid/internal/mosquittotest"
)

// TestWatchdogFiresWhenWorkerStuck checks that WATCHDOG=1 keep-alives stop
// while the worker is stuck on one query beyond queue.stuck_after, so that
// systemd restarts palid, and resume when it moves again.
func TestWatchdogFiresWhenWorkerStuck(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	keepAlives := func(d time.Duration) int {
		n := 0
		buf := make([]byte, 512)
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			conn.SetReadDeadline(end)
			m, err := conn.Read(buf)
			if err != nil {
				break
			}
			if string(buf[:m]) == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	b := mosquittotest.Start(t)
	d := startDaemon(t, b.URL(), func(c *Config) { c.Queue.StuckAfter = time.Second })
	if n := keepAlives(time.Second); n < 3 {
		t.Fatalf("%d keep-alives in 1s while healthy (interval 100ms)", n)
	}
	release := make(chan struct{})
	d.queue.Submit(&Job{Run: func(context.Context) { <-release }})
	time.Sleep(1500 * time.Millisecond) // beyond stuck_after
	keepAlives(10 * time.Millisecond)   // drop those sent before it
	if n := keepAlives(time.Second); n != 0 {
		t.Errorf("%d keep-alives while the worker is stuck", n)
	}
	close(release)
	if n := keepAlives(time.Second); n < 3 {
		t.Errorf("%d keep-alives after the worker moved again", n)
	}
}
