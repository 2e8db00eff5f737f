package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is palid serve's configuration: the YAML file, then flags on top.
// Every key, its default and an example are in docs/configuration.md.
type Config struct {
	// DeviceID names this device; the MQTT base topic is palid/<device_id>.
	DeviceID string `yaml:"device_id"`
	// BaseTopic overrides the MQTT base topic (default palid/<device_id>).
	BaseTopic string `yaml:"base_topic"`
	// Model is the model directory (model.gguf, mmproj.gguf); empty = bundled.
	Model string `yaml:"model"`
	// Backend runs the vision tower: cpu, tflite or auto.
	Backend string `yaml:"backend"`
	// Threads is the number of compute threads (0 = every core).
	Threads int `yaml:"threads"`
	// Source is the frame source spec (v4l2:/dev/video0, file:, dir:, http:, ffmpeg:, synthetic:SEED).
	Source string `yaml:"source"`
	// FPS is the rate at which frames are taken from the source.
	FPS float64 `yaml:"fps"`
	// StateDir holds the MQTT stores and the outbox.
	StateDir string `yaml:"state_dir"`

	// TFLite configures the NPU path of backend tflite or auto (docs/npu.md).
	TFLite        TFLiteConfig        `yaml:"tflite"`
	Broker        BrokerConfig        `yaml:"broker"`
	Queue         QueueConfig         `yaml:"queue"`
	Window        WindowConfig        `yaml:"window"`
	Question      QuestionConfig      `yaml:"question"`
	GPIO          GPIOConfig          `yaml:"gpio"`
	HTTP          HTTPConfig          `yaml:"http"`
	HomeAssistant HomeAssistantConfig `yaml:"homeassistant"`
}

// TFLiteConfig is the vision tower on TFLite and an NPU delegate.
type TFLiteConfig struct {
	// Library is the path of libtensorflowlite_c.so.
	Library string `yaml:"library"`
	// Model is the exported vision tower (palid export-tflite); default
	// vision.tflite in the model directory.
	Model string `yaml:"model"`
	// Threads are TFLite's CPU threads (0: its default).
	Threads int `yaml:"threads"`
	// Delegate is a vendor delegate library with the plugin ABI (VX,
	// libedgetpu, Arm NN); empty runs TFLite's own kernels.
	Delegate string `yaml:"delegate"`
	// DelegateOptions are the delegate's key/value options.
	DelegateOptions map[string]string `yaml:"delegate_options"`
	// MinCosine is the agreement with the CPU tower that auto requires.
	MinCosine float64 `yaml:"min_cosine"`
}

// BrokerConfig says how to reach the MQTT broker.
type BrokerConfig struct {
	// URL is tcp://host:port, ssl://host:port or mqtts://host:port; empty
	// means run the embedded broker on Embedded.
	URL string `yaml:"url"`
	// Embedded is the listen address of the embedded broker used when URL is empty.
	Embedded string `yaml:"embedded"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile, CertFile and KeyFile configure TLS (server CA, client certificate).
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify disables server certificate checks (testing only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// ClientID is the MQTT client id (default palid-<device_id>).
	ClientID string `yaml:"client_id"`
}

// QueueConfig bounds the query queue.
type QueueConfig struct {
	// Max is the number of queries that may wait; more are answered busy.
	Max int `yaml:"max"`
	// DefaultTimeout applies to queries that give no timeout_s.
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// MaxTokens is the default answer length limit.
	MaxTokens int `yaml:"max_tokens"`
	// StuckAfter is how long the worker may run one query before the
	// systemd watchdog keep-alives stop (and systemd restarts palid).
	StuckAfter time.Duration `yaml:"stuck_after"`
}

// WindowConfig is the default video window.
type WindowConfig struct {
	// Frames is the default number of frames of a video question (<= 16).
	Frames int `yaml:"frames"`
	// Stride is the default distance between sampled frames, in frames.
	Stride int `yaml:"stride"`
	// RingBytes bounds the memory of the ring of recent frames.
	RingBytes int64 `yaml:"ring_bytes"`
	// TokenCache encodes frames through the vision tower as they arrive,
	// so that a video question pays only for the text side.
	TokenCache bool `yaml:"token_cache"`
	// CacheInterval is the least time between two frames encoded ahead
	// (0: every frame, as long as the encoder keeps up).
	CacheInterval time.Duration `yaml:"cache_interval"`
	// CacheBytes bounds the memory of the cached tokens.
	CacheBytes int64 `yaml:"cache_bytes"`
}

// QuestionConfig is the standing question asked by the interval and GPIO triggers.
type QuestionConfig struct {
	Text     string        `yaml:"text"`
	Mode     string        `yaml:"mode"`
	Interval time.Duration `yaml:"interval"`
	Enabled  bool          `yaml:"enabled"`
	Lang     string        `yaml:"lang"`
}

// GPIOConfig names the pins of the GPIO trigger and busy LED (periph.io names, e.g. GPIO17).
type GPIOConfig struct {
	Trigger  string        `yaml:"trigger"`
	Edge     string        `yaml:"edge"`
	Debounce time.Duration `yaml:"debounce"`
	LED      string        `yaml:"led"`
}

// HTTPConfig is the local HTTP API.
type HTTPConfig struct {
	// Addr is the listen address; empty disables it unless systemd passes a socket.
	Addr string `yaml:"addr"`
	// Token, when set, is required as a bearer token.
	Token string `yaml:"token"`
}

// HomeAssistantConfig controls MQTT discovery.
type HomeAssistantConfig struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"`
}

// DefaultConfig is the embedded default: bundled model, synthetic camera,
// embedded broker on 127.0.0.1:1883, a standing question every 5 s.
func DefaultConfig() Config {
	return Config{
		DeviceID:      "palid",
		Backend:       "cpu",
		Source:        "synthetic:1",
		FPS:           2,
		StateDir:      defaultStateDir(),
		Broker:        BrokerConfig{Embedded: "127.0.0.1:1883"},
		Queue:         QueueConfig{Max: 8, DefaultTimeout: 30 * time.Second, MaxTokens: 32, StuckAfter: 5 * time.Minute},
		Window:        WindowConfig{Frames: 16, Stride: 1, RingBytes: 64 << 20, CacheBytes: 64 << 20},
		Question:      QuestionConfig{Text: "caption en", Mode: "frame", Interval: 5 * time.Second, Enabled: true, Lang: "en"},
		GPIO:          GPIOConfig{Edge: "rising", Debounce: 200 * time.Millisecond},
		HTTP:          HTTPConfig{Addr: "127.0.0.1:8080"},
		HomeAssistant: HomeAssistantConfig{Enabled: true, Prefix: "homeassistant"},
	}
}

func defaultStateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" { // systemd StateDirectory=
		return strings.Split(d, ":")[0]
	}
	if d, err := os.UserCacheDir(); err == nil {
		return d + "/palid"
	}
	return "/var/lib/palid"
}

// LoadConfig reads the YAML file at path over DefaultConfig and validates it.
// Unknown keys are errors, naming the key and line.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(data, path)
}

// ParseConfig parses YAML data (name is used in errors) over DefaultConfig.
func ParseConfig(data []byte, name string) (Config, error) {
	cfg := DefaultConfig()
	// An explicit file means an external broker unless it says otherwise.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

var deviceIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks every key and names the first that is wrong.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("key %s: %s", key, fmt.Sprintf(format, args...))
	}
	if !deviceIDRe.MatchString(c.DeviceID) {
		return bad("device_id", "%q must be 1-64 letters, digits, '-' or '_'", c.DeviceID)
	}
	if strings.ContainsAny(c.BaseTopic, "+#") {
		return bad("base_topic", "%q must not hold MQTT wildcards", c.BaseTopic)
	}
	switch c.Backend {
	case "cpu", "tflite", "auto":
	default:
		return bad("backend", "%q is not cpu, tflite or auto", c.Backend)
	}
	if c.Backend != "cpu" && c.TFLite.Library == "" {
		return bad("tflite.library", "backend %s needs the path of libtensorflowlite_c.so", c.Backend)
	}
	if c.TFLite.MinCosine < 0 || c.TFLite.MinCosine > 1 {
		return bad("tflite.min_cosine", "%v is outside [0, 1]", c.TFLite.MinCosine)
	}
	if c.Threads < 0 {
		return bad("threads", "%d is negative", c.Threads)
	}
	if c.Source == "" || !strings.Contains(c.Source, ":") {
		return bad("source", "%q is not a source spec such as v4l2:/dev/video0 or synthetic:1", c.Source)
	}
	if c.FPS <= 0 || c.FPS > 120 {
		return bad("fps", "%v is outside (0, 120]", c.FPS)
	}
	if c.Broker.URL != "" {
		u, err := url.Parse(c.Broker.URL)
		if err != nil || u.Host == "" {
			return bad("broker.url", "%q is not a URL like tcp://host:1883", c.Broker.URL)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return bad("broker.url", "scheme %q is not tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Scheme)
		}
	}
	if (c.Broker.CertFile == "") != (c.Broker.KeyFile == "") {
		return bad("broker.cert_file", "cert_file and key_file go together")
	}
	if c.Queue.Max < 1 || c.Queue.Max > 10000 {
		return bad("queue.max", "%d is outside [1, 10000]", c.Queue.Max)
	}
	if c.Queue.DefaultTimeout <= 0 {
		return bad("queue.default_timeout", "%v must be positive", c.Queue.DefaultTimeout)
	}
	if c.Queue.MaxTokens < 1 || c.Queue.MaxTokens > 512 {
		return bad("queue.max_tokens", "%d is outside [1, 512]", c.Queue.MaxTokens)
	}
	if c.Queue.StuckAfter < time.Second {
		return bad("queue.stuck_after", "%v is below 1s", c.Queue.StuckAfter)
	}
	if c.Window.Frames < 1 || c.Window.Frames > 16 {
		return bad("window.frames", "%d is outside [1, 16]", c.Window.Frames)
	}
	if c.Window.Stride < 1 {
		return bad("window.stride", "%d must be at least 1", c.Window.Stride)
	}
	if c.Window.RingBytes < 1<<20 {
		return bad("window.ring_bytes", "%d is below 1 MiB", c.Window.RingBytes)
	}
	if c.Window.CacheInterval < 0 {
		return bad("window.cache_interval", "%v is negative", c.Window.CacheInterval)
	}
	if c.Window.TokenCache && c.Window.CacheBytes < 1<<20 {
		return bad("window.cache_bytes", "%d is below 1 MiB", c.Window.CacheBytes)
	}
	switch c.Question.Mode {
	case "frame", "video":
	default:
		return bad("question.mode", "%q is not frame or video", c.Question.Mode)
	}
	if c.Question.Interval < 0 || (c.Question.Interval > 0 && c.Question.Interval < 100*time.Millisecond) {
		return bad("question.interval", "%v must be 0 (off) or at least 100ms", c.Question.Interval)
	}
	switch c.GPIO.Edge {
	case "rising", "falling", "both":
	default:
		return bad("gpio.edge", "%q is not rising, falling or both", c.GPIO.Edge)
	}
	if c.HomeAssistant.Prefix == "" || strings.ContainsAny(c.HomeAssistant.Prefix, "+#") {
		return bad("homeassistant.prefix", "%q must be a plain topic prefix", c.HomeAssistant.Prefix)
	}
	return nil
}

// Topic returns the MQTT base topic.
func (c *Config) Topic() string {
	if c.BaseTopic != "" {
		return c.BaseTopic
	}
	return "palid/" + c.DeviceID
}
