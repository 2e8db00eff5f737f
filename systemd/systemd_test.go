package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// notifySocket opens a real unixgram socket, points NOTIFY_SOCKET at it and
// returns a function reading the next datagram.
func notifySocket(t *testing.T) func(timeout time.Duration) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func(timeout time.Duration) (string, bool) {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
}

func TestNotifyMessagesInOrder(t *testing.T) {
	read := notifySocket(t)
	n := NewNotifier()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.Status("loading model"))
	must(n.Status("loading model")) // unchanged: not resent
	must(n.Ready("idle; model demo"))
	must(n.Reloading())
	must(n.Ready("idle; reloaded"))
	must(n.Stopping())
	want := []string{
		"STATUS=loading model",
		"READY=1\nSTATUS=idle; model demo",
		"RELOADING=1\nMONOTONIC_USEC=",
		"READY=1\nSTATUS=idle; reloaded",
		"STOPPING=1\nSTATUS=stopping",
	}
	for i, w := range want {
		got, ok := read(time.Second)
		if !ok {
			t.Fatalf("message %d: nothing received, want %q", i, w)
		}
		if !strings.HasPrefix(got, w) {
			t.Errorf("message %d = %q, want prefix %q", i, got, w)
		}
	}
	if got, ok := read(50 * time.Millisecond); ok {
		t.Errorf("unexpected extra message %q", got)
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := NewNotifier().Ready("x"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogStopsWhenStuck(t *testing.T) {
	read := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "60000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	iv := WatchdogInterval()
	if iv != 60*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, want 60ms", iv)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go NewNotifier().RunWatchdog(ctx, iv, healthy.Load)
	for i := 0; i < 3; i++ {
		if got, ok := read(time.Second); !ok || got != "WATCHDOG=1" {
			t.Fatalf("keep-alive %d: %q, %v", i, got, ok)
		}
	}
	healthy.Store(false)
	read(100 * time.Millisecond) // one may have been in flight
	if got, ok := read(200 * time.Millisecond); ok {
		t.Fatalf("keep-alive %q sent while the daemon is stuck", got)
	}
	healthy.Store(true)
	if _, ok := read(time.Second); !ok {
		t.Fatal("keep-alives did not resume")
	}
}

func TestProgress(t *testing.T) {
	now := time.Unix(0, 0)
	p := NewProgress(time.Minute)
	p.now = func() time.Time { return now }
	p.moved = now
	if !p.Healthy(0, true) {
		t.Fatal("fresh tracker unhealthy")
	}
	now = now.Add(2 * time.Minute)
	if p.Healthy(0, true) {
		t.Error("busy loop without progress for 2m reported healthy")
	}
	if !p.Healthy(0, false) {
		t.Error("idle loop reported unhealthy")
	}
	now = now.Add(2 * time.Minute)
	if !p.Healthy(1, true) {
		t.Error("loop that advanced reported unhealthy")
	}
}

type entry struct {
	msg  string
	prio journal.Priority
	vars map[string]string
}

func TestJournalHandlerFields(t *testing.T) {
	var got []entry
	h := NewJournalHandler(func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, entry{m, p, v})
		return nil
	}, slog.LevelDebug)
	log := slog.New(h).With("device", "porch")
	log.Info("answered", "query_id", "q-17", "latency_ms", 412, slog.Group("mqtt", "topic", "palid/porch/answer"))
	log.WithGroup("camera").Warn("lost", "dev", "/dev/video0")
	log.Error("failed", "9lives", true)
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	e := got[0]
	if e.msg != "answered" || e.prio != journal.PriInfo || e.vars["QUERY_ID"] != "q-17" ||
		e.vars["LATENCY_MS"] != "412" || e.vars["MQTT_TOPIC"] != "palid/porch/answer" ||
		e.vars["DEVICE"] != "porch" || e.vars["SYSLOG_IDENTIFIER"] != "palid" {
		t.Errorf("entry 0 = %+v", e)
	}
	if got[1].prio != journal.PriWarning || got[1].vars["CAMERA_DEV"] != "/dev/video0" {
		t.Errorf("entry 1 = %+v", got[1])
	}
	if got[2].prio != journal.PriErr || got[2].vars["F9LIVES"] != "true" {
		t.Errorf("entry 2 = %+v", got[2])
	}
}

func TestNewLoggerPlainOutsideJournal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var b strings.Builder
	NewLogger(&b, slog.LevelInfo).Info("hello", "query_id", "q1")
	if !strings.Contains(b.String(), "msg=hello query_id=q1") {
		t.Errorf("plain log = %q", b.String())
	}
}

// TestSocketActivation passes a real listening socket as fd 3 to a child
// process, the way systemd does, and talks to it through that socket.
func TestSocketActivation(t *testing.T) {
	if os.Getenv("PALID_ACTIVATION_CHILD") == "1" {
		os.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid())) // systemd sets it to the child's pid
		l, ok, err := Listener("http")
		if err != nil || !ok {
			fmt.Fprintln(os.Stderr, "no listener:", ok, err)
			os.Exit(3)
		}
		c, err := l.Accept()
		if err != nil {
			os.Exit(4)
		}
		io.WriteString(c, "hello from "+l.Addr().String())
		c.Close()
		os.Exit(0)
	}
	if _, ok, err := Listener(""); ok || err != nil {
		t.Fatalf("Listener without LISTEN_FDS = %v, %v", ok, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSocketActivation$")
	cmd.Env = append(os.Environ(), "PALID_ACTIVATION_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	f.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(c)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.HasPrefix(string(msg), "hello from 127.0.0.1:") {
		t.Errorf("child said %q", msg)
	}
}
