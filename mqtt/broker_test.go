package mqtt

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mosquitto is a real Debian mosquitto broker run by a test on a free
// loopback port, with persistence in a temporary directory.
type mosquitto struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	log  *os.File
}

// startMosquitto starts a broker; the test skips when mosquitto is not
// installed, unless CI=true, where that is a failure.
func startMosquitto(t *testing.T) *mosquitto {
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
	m := &mosquitto{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	conf := fmt.Sprintf("user root\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 10000\n", m.port, m.dir)
	if err := os.WriteFile(filepath.Join(m.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (m *mosquitto) url() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

func (m *mosquitto) start() {
	m.t.Helper()
	f, err := os.OpenFile(filepath.Join(m.dir, "mosquitto.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		m.t.Fatal(err)
	}
	m.log = f
	m.cmd = exec.Command(m.bin, "-c", filepath.Join(m.dir, "mosquitto.conf"))
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(m.port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
	m.t.Fatalf("mosquitto did not come up on port %d:\n%s", m.port, log)
}

// stop ends the broker with SIGTERM (it saves its persistence) and waits.
func (m *mosquitto) stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.cmd.Wait()
	m.cmd = nil
	m.log.Close()
}

// proxy is a TCP relay to the broker whose connections a test can cut, to
// make the broker see a client vanish without a DISCONNECT.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); p.cut() })
	return p
}

func (p *proxy) url() string { return "tcp://" + p.l.Addr().String() }

// cut closes every relayed connection and stops accepting new ones.
func (p *proxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
