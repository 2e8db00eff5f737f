// Package mosquittotest runs a real Debian mosquitto broker for tests, on a
// free loopback port with persistence in a temporary directory.
package mosquittotest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Broker is a mosquitto process owned by a test.
type Broker struct {
	t    testing.TB
	bin  string
	Port int
	Dir  string
	cmd  *exec.Cmd
	log  *os.File
}

// Start starts a broker that is stopped when the test ends. The test skips
// when mosquitto is not installed, unless CI=true, where that is a failure.
func Start(t testing.TB) *Broker {
	t.Helper()
	return start(t, "")
}

// StartTLS starts a broker whose listener speaks TLS with the server
// certificate certFile/keyFile and requires clients to present a
// certificate signed by the CA in caFile.
func StartTLS(t testing.TB, caFile, certFile, keyFile string) *Broker {
	t.Helper()
	return start(t, fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", caFile, certFile, keyFile))
}

// start runs mosquitto with listenerOpts following the listener line.
func start(t testing.TB, listenerOpts string) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("mosquitto is not installed (apt-get install mosquitto); required when CI=true")
			}
			t.Skip("mosquitto is not installed (apt-get install mosquitto)")
		}
	}
	b := &Broker{t: t, bin: bin, Port: FreePort(t), Dir: t.TempDir()}
	conf := fmt.Sprintf("user root\nlistener %d 127.0.0.1\n%sallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 10000\n", b.Port, listenerOpts, b.Dir)
	if err := os.WriteFile(filepath.Join(b.Dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	t.Cleanup(b.Stop)
	return b
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URL is the broker's address for MQTT clients.
func (b *Broker) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.Port) }

// Restart starts the broker process (again, after Stop) and waits until it
// accepts connections.
func (b *Broker) Restart() {
	b.t.Helper()
	f, err := os.OpenFile(filepath.Join(b.Dir, "mosquitto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	b.log = f
	b.cmd = exec.Command(b.bin, "-c", filepath.Join(b.Dir, "mosquitto.conf"))
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(b.Port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
	b.t.Fatalf("mosquitto did not come up on port %d:\n%s", b.Port, log)
}

// Stop ends the broker with SIGTERM (it saves its persistence) and waits.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	b.cmd = nil
	b.log.Close()
}
