package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palid/palid/mqtt"
	"github.com/palid/palid/neon"
	palirt "github.com/palid/palid/runtime"
)

// TestMain lets tests run palid itself as a child process: with
// PALID_RUN_MAIN=1 the test binary is palid, its arguments in PALID_ARGS
// separated by the unit separator.
func TestMain(m *testing.M) {
	if os.Getenv("PALID_RUN_MAIN") == "1" {
		os.Exit(run(strings.Split(os.Getenv("PALID_ARGS"), "\x1f")))
	}
	os.Exit(m.Run())
}

// palidCmd returns a command running palid with args in a child process.
func palidCmd(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PALID_RUN_MAIN=1", "PALID_ARGS="+strings.Join(args, "\x1f"))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeUnderSystemd runs palid serve as systemd would: a real notify
// socket, WATCHDOG_USEC, SIGHUP to reload (a good file, then a bad one) and
// SIGTERM to stop, and checks the exact notify messages and their order.
func TestServeUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	os.Mkdir(model, 0o755)
	if err := palirt.WriteRandomModel(model, "tiny", neon.Q8_0, 2); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	conf := filepath.Join(dir, "palid.yaml")
	writeConf := func(question string) {
		t.Helper()
		y := fmt.Sprintf("device_id: sd\nmodel: %s\nsource: synthetic:2\nfps: 10\nstate_dir: %s\nbroker:\n  embedded: %s\nhttp:\n  addr: \"\"\nquestion:\n  text: %q\n  interval: 0s\n",
			model, filepath.Join(dir, "state"), addr, question)
		if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("caption en")

	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	cmd := palidCmd([]string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}, "serve", "--config", conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var seen []string // every message but keep-alives, in order
	watchdogs := 0
	waitFor := func(prefix string, timeout time.Duration) {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %q", prefix)
				}
				if m == "WATCHDOG=1" {
					watchdogs++
					continue
				}
				seen = append(seen, m)
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q within %v; got %q\nstderr:\n%s", prefix, timeout, seen, stderr.String())
			}
		}
	}
	waitFor("READY=1", 60*time.Second)
	if !strings.Contains(strings.Join(seen, "|"), "STATUS=loading model") {
		t.Errorf("no loading status before READY: %q", seen)
	}

	// The daemon answers over its embedded broker.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	resp, err := mqtt.Query(ctx, "tcp://"+addr, "sd", mqtt.Request{Question: "caption en"})
	cancel()
	if err != nil || resp.Status != mqtt.StatusOK {
		t.Fatalf("query: %+v %v", resp, err)
	}

	// Keep-alives arrive while it is healthy.
	deadline := time.Now().Add(5 * time.Second)
	for watchdogs == 0 && time.Now().Before(deadline) {
		select {
		case m := <-msgs:
			if m == "WATCHDOG=1" {
				watchdogs++
			} else {
				seen = append(seen, m)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if watchdogs == 0 {
		t.Error("no WATCHDOG=1 while healthy")
	}

	// A valid new configuration: RELOADING=1, then READY=1.
	writeConf("answer en is there a red circle?")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("RELOADING=1", 30*time.Second)
	waitFor("READY=1", 60*time.Second)

	// An invalid one: no reload, the daemon keeps running.
	os.WriteFile(conf, []byte("queue:\n  max: 0\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	resp, err = mqtt.Query(ctx, "tcp://"+addr, "sd", mqtt.Request{Question: "caption en"})
	cancel()
	if err != nil || resp.Status != mqtt.StatusOK {
		t.Fatalf("query after a bad reload: %+v %v", resp, err)
	}
	if !strings.Contains(stderr.String(), "key queue.max") {
		t.Errorf("bad reload not logged with the key:\n%s", stderr.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	waitFor("STOPPING=1", 30*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("palid serve exit: %v\n%s", err, stderr.String())
	}
	// The order of the state messages.
	var states []string
	for _, m := range seen {
		for _, w := range []string{"READY=1", "RELOADING=1", "STOPPING=1"} {
			if strings.HasPrefix(m, w) {
				states = append(states, w)
			}
		}
	}
	want := "READY=1 RELOADING=1 READY=1 STOPPING=1"
	if got := strings.Join(states, " "); got != want {
		t.Errorf("state messages %q, want %q", got, want)
	}
}
