package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Broker says where and how to connect.
type Broker struct {
	URL                string // tcp://host:1883, ssl://host:8883 (also tls://, mqtts://), ws://, wss://
	Username           string
	Password           string
	CAFile             string // PEM CA bundle for TLS; empty: the system roots
	CertFile, KeyFile  string // PEM client certificate and key for TLS
	InsecureSkipVerify bool   // TLS without checking the server certificate
}

// tlsSchemes are the broker URL schemes paho runs over TLS.
var tlsSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true, "tcps": true, "wss": true}

// tlsConfig builds the TLS configuration, nil for a plain connection.
func (b Broker) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(b.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("broker URL %q: want scheme://host:port", b.URL)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ws", "ssl", "tls", "mqtts", "tcps", "wss":
	default:
		return nil, fmt.Errorf("broker URL %q: unknown scheme %q (want tcp, ssl, mqtts, ws or wss)", b.URL, u.Scheme)
	}
	usesTLS := b.CAFile != "" || b.CertFile != "" || b.KeyFile != "" || b.InsecureSkipVerify
	if !tlsSchemes[u.Scheme] {
		if usesTLS {
			return nil, fmt.Errorf("broker URL %q is not TLS but TLS options are set; use ssl:// or mqtts://", b.URL)
		}
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: b.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if b.CAFile != "" {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate in it", b.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (b.CertFile == "") != (b.KeyFile == "") {
		return nil, errors.New("client certificate: cert file and key file must be given together")
	}
	if b.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.CertFile, b.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / %s: %w", b.CertFile, b.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Config configures a Client.
type Config struct {
	Broker   Broker
	DeviceID string // required; see ValidateDeviceID
	// BaseTopic is <p>; default palid/<DeviceID>.
	BaseTopic string
	// ClientID must stay the same across restarts (persistent session);
	// default palid-<DeviceID>.
	ClientID string
	// StateDir receives paho's store (paho/) and the outbox (outbox/).
	StateDir string
	// DiscoveryPrefix is Home Assistant's discovery prefix; default
	// homeassistant. DisableDiscovery turns discovery off.
	DiscoveryPrefix  string
	DisableDiscovery bool
	// DeviceName, Model and Version describe the device to Home Assistant.
	DeviceName, Model, Version string

	KeepAlive            time.Duration // default 30s
	ConnectTimeout       time.Duration // default 10s
	MaxReconnectInterval time.Duration // default 30s
	// ReconnectJitter is the largest random wait added before each
	// reconnection attempt (default 2s), so that devices do not all return
	// to a restarted broker at the same instant.
	ReconnectJitter time.Duration
	// MaxOutbox bounds the messages kept while the broker is away (default
	// 10000); beyond it the oldest are dropped with a warning.
	MaxOutbox int
	Limits    Limits
	Logger    *slog.Logger // default slog.Default()
}

// Handlers are the daemon's side of the Client. Both are called from
// paho's delivery goroutines and must not block.
type Handlers struct {
	// Enqueue hands a valid request to the daemon's queue and reports
	// whether it was taken; when it returns false the Client answers
	// "busy" at once. Required.
	Enqueue func(Request) bool
	// Setting receives a valid change of the standing question from a set
	// topic (or SettingAsk from <p>/question/ask). Optional.
	Setting func(Setting)
}

// Client is palid's MQTT side: it receives requests and settings and
// publishes responses, answers and state, keeping responses and answers in
// an on-disk outbox until the broker acknowledged them.
type Client struct {
	cfg    Config
	h      Handlers
	log    *slog.Logger
	topics Topics
	disco  string // discovery topic, "" when disabled
	status string // <prefix>/status, Home Assistant's birth topic
	pc     paho.Client
	box    *outbox

	flushMu  sync.Mutex // one flush at a time, in id order
	mu       sync.Mutex
	inflight map[uint64]bool   // outbox ids handed to paho, not yet acked
	retained map[string][]byte // last retained payload per topic, re-sent on connect
	order    []string          // retained topics in first-publish order
	seen     *dedupe

	attempts  atomic.Int64
	resumed   atomic.Bool   // paho has listed its store since the last connection attempt
	resumedCh chan struct{} // signalled when resumed becomes true
	ready     chan struct{} // closed once the first subscriptions are in place
	readyOnce sync.Once
	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New validates cfg, opens the outbox and paho's file store in the state
// directory and prepares the client. Call Start to connect.
func New(cfg Config, h Handlers) (*Client, error) {
	if err := ValidateDeviceID(cfg.DeviceID); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	if h.Enqueue == nil {
		return nil, errors.New("mqtt: Handlers.Enqueue is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("mqtt: state directory is required")
	}
	if cfg.BaseTopic == "" {
		cfg.BaseTopic = DefaultBaseTopic(cfg.DeviceID)
	}
	if err := ValidateTopicPrefix("base topic", cfg.BaseTopic); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = "homeassistant"
	}
	if err := ValidateTopicPrefix("discovery prefix", cfg.DiscoveryPrefix); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "palid-" + cfg.DeviceID
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 30 * time.Second
	}
	if cfg.ReconnectJitter < 0 {
		cfg.ReconnectJitter = 0
	} else if cfg.ReconnectJitter == 0 {
		cfg.ReconnectJitter = 2 * time.Second
	}
	if cfg.MaxOutbox <= 0 {
		cfg.MaxOutbox = 10000
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.DeviceName == "" {
		cfg.DeviceName = "palid " + cfg.DeviceID
	}
	tlsCfg, err := cfg.Broker.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	c := &Client{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		topics:    NewTopics(cfg.BaseTopic),
		inflight:  map[uint64]bool{},
		retained:  map[string][]byte{},
		seen:      newDedupe(1024),
		wake:      make(chan struct{}, 1),
		ready:     make(chan struct{}),
		resumedCh: make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "mqtt")
	if !cfg.DisableDiscovery {
		c.disco = DiscoveryTopic(cfg.DiscoveryPrefix, cfg.DeviceID)
		c.status = cfg.DiscoveryPrefix + "/status"
	}
	storeDir := filepath.Join(cfg.StateDir, "paho")
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("mqtt: state directory: %w", err)
	}
	box, warnings, err := openOutbox(filepath.Join(cfg.StateDir, "outbox"), cfg.MaxOutbox)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	for _, w := range warnings {
		c.log.Warn(w)
	}
	c.box = box
	c.dropHeldByPaho(storeDir)

	opts := paho.NewClientOptions().
		AddBroker(cfg.Broker.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Broker.Username).
		SetPassword(cfg.Broker.Password).
		SetCleanSession(false).
		SetResumeSubs(true).
		SetOrderMatters(false).
		SetStore(&syncStore{FileStore: paho.NewFileStore(storeDir), dir: storeDir, onAll: c.onResume}).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(30*time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetBinaryWill(c.topics.Available, []byte("offline"), 1, true).
		SetDefaultPublishHandler(c.onMessage).
		SetOnConnectHandler(func(paho.Client) { go c.onConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("connection to the broker lost", "broker", cfg.Broker.URL, "err", err)
		}).
		SetConnectionAttemptHandler(c.onAttempt)
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	c.pc = paho.NewClient(opts)
	return c, nil
}

// dropHeldByPaho removes outbox entries that paho's file store still holds
// from a previous run: paho re-sends those itself on connect, so sending
// them from the outbox too would deliver them twice.
func (c *Client) dropHeldByPaho(storeDir string) {
	fs := paho.NewFileStore(storeDir)
	fs.Open()
	defer fs.Close()
	held := map[string]bool{}
	for _, key := range fs.All() {
		if len(key) < 2 || key[:2] != "o." {
			continue
		}
		if p, ok := fs.Get(key).(*packets.PublishPacket); ok && p != nil {
			held[p.TopicName+"\x00"+string(p.Payload)] = true
		}
	}
	if len(held) == 0 {
		return
	}
	for _, e := range c.box.list() {
		if held[e.Topic+"\x00"+string(e.Payload)] {
			c.log.Info("outbox entry already held by paho's store; paho re-sends it", "id", e.ID, "topic", e.Topic)
			c.box.remove(e.ID)
		}
	}
}

// syncStore is paho's file store with each stored packet fsynced, so that a
// message the outbox hands over to paho survives a power cut too.
type syncStore struct {
	*paho.FileStore
	dir   string
	onAll func()
}

// All is called by paho when it resumes a session, to list what to send
// again; packets stored after that are not sent again.
func (s *syncStore) All() []string {
	keys := s.FileStore.All()
	if s.onAll != nil {
		s.onAll()
	}
	return keys
}

func (s *syncStore) Put(key string, m packets.ControlPacket) {
	s.FileStore.Put(key, m)
	if f, err := os.Open(filepath.Join(s.dir, key+".msg")); err == nil {
		f.Sync()
		f.Close()
	}
}

// Topics returns the device's topics.
func (c *Client) Topics() Topics { return c.topics }

// Start begins connecting and waits until the first connection is up and
// subscribed, or ctx ends; in the latter case it returns ctx's error but keeps trying in
// the background (answers are kept in the outbox meanwhile).
func (c *Client) Start(ctx context.Context) error {
	c.wg.Add(1)
	go c.sender()
	tok := c.pc.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: connect to %s: %w", c.cfg.Broker.URL, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("mqtt: connect to %s: %w (still trying)", c.cfg.Broker.URL, ctx.Err())
	}
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: subscribe at %s: %w (still trying)", c.cfg.Broker.URL, ctx.Err())
	}
}

// Connected reports whether the connection to the broker is up now.
func (c *Client) Connected() bool { return c.pc.IsConnectionOpen() }

// Close publishes offline on <p>/available (when connected), disconnects
// and stops. Messages not yet acknowledged stay in the outbox for the next
// run.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		if c.pc.IsConnectionOpen() {
			tok := c.pc.Publish(c.topics.Available, 1, true, []byte("offline"))
			select {
			case <-tok.Done():
				err = tok.Error()
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		close(c.done)
		c.pc.Disconnect(250)
		c.wg.Wait()
	})
	return err
}

// OutboxLen is the number of responses and answers not yet acknowledged.
func (c *Client) OutboxLen() int { return c.box.len() }

// onResume records that paho has taken the list of messages to send again
// on this connection.
func (c *Client) onResume() {
	c.resumed.Store(true)
	select {
	case c.resumedCh <- struct{}{}:
	default:
	}
}

// onAttempt adds a random wait before every connection attempt but the
// first of a run of attempts.
func (c *Client) onAttempt(_ *url.URL, cfg *tls.Config) *tls.Config {
	// Until paho lists its store for this connection, a message we publish
	// would be stored first and then sent twice: once by us, once by paho's
	// resume. Publishing from the outbox waits for that (see flush).
	c.resumed.Store(false)
	if c.attempts.Add(1) > 1 && c.cfg.ReconnectJitter > 0 {
		d := time.Duration(rand.Int64N(int64(c.cfg.ReconnectJitter)))
		select {
		case <-time.After(d):
		case <-c.done:
		}
	}
	return cfg
}

// onConnect runs after every (re)connection: subscribe, send the outbox in
// order, Home Assistant discovery and the retained state, then online last.
func (c *Client) onConnect() {
	c.attempts.Store(1)
	if !c.resumed.Load() {
		t := time.NewTimer(10 * time.Second)
		select {
		case <-c.resumedCh:
		case <-t.C:
			c.log.Warn("paho did not resume its session in time; sending the outbox anyway")
			c.resumed.Store(true)
		case <-c.done:
		}
		t.Stop()
	}
	c.log.Info("connected to the broker", "broker", c.cfg.Broker.URL, "base", c.topics.Base)
	subs := map[string]byte{
		c.topics.RequestAsk:  1,
		c.topics.QuestionSet: 1,
		c.topics.QuestionAsk: 1,
		c.topics.ModeSet:     1,
		c.topics.IntervalSet: 1,
		c.topics.EnabledSet:  1,
	}
	if c.status != "" {
		subs[c.status] = 1
	}
	tok := c.pc.SubscribeMultiple(subs, nil)
	if !c.waitToken(tok, 30*time.Second) {
		return
	}
	c.readyOnce.Do(func() { close(c.ready) })
	c.flush()
	c.publishDiscovery()
	c.mu.Lock()
	var msgs [][2][]byte
	for _, t := range c.order {
		msgs = append(msgs, [2][]byte{[]byte(t), c.retained[t]})
	}
	c.mu.Unlock()
	for _, m := range msgs {
		c.pc.Publish(string(m[0]), 1, true, m[1])
	}
	c.pc.Publish(c.topics.Available, 1, true, []byte("online"))
}

// waitToken waits for tok; false (logged) on error, timeout or Close.
func (c *Client) waitToken(tok paho.Token, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			c.log.Warn("broker operation failed", "err", err)
			return false
		}
		return true
	case <-t.C:
		c.log.Warn("broker operation timed out", "after", d)
	case <-c.done:
	}
	return false
}

// onMessage dispatches every incoming message; with ordered delivery off
// paho calls it on a goroutine of its own per message.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	t := c.topics
	switch m.Topic() {
	case t.RequestAsk:
		c.handleRequest(m)
	case t.QuestionSet:
		c.handleSetting(SettingQuestion, m)
	case t.QuestionAsk:
		if m.Retained() {
			c.log.Info("ignoring a retained message", "topic", m.Topic())
			return
		}
		c.handleSetting(SettingAsk, m)
	case t.ModeSet:
		c.handleSetting(SettingMode, m)
	case t.IntervalSet:
		c.handleSetting(SettingInterval, m)
	case t.EnabledSet:
		c.handleSetting(SettingEnabled, m)
	case c.status:
		if string(m.Payload()) == "online" && c.status != "" {
			c.log.Info("Home Assistant is online; sending discovery again")
			c.publishDiscovery()
		}
	}
}

func (c *Client) handleRequest(m paho.Message) {
	if m.Retained() {
		c.log.Info("ignoring a retained request", "topic", m.Topic(), "bytes", len(m.Payload()))
		return
	}
	payload := m.Payload()
	req, err := ParseRequest(payload, c.cfg.Limits)
	// A re-delivery is a request with the DUP flag, or one that repeats
	// the payload, transaction included, of a recent request: a requester
	// that lost the broker re-sends its QoS 1 publication, and the broker
	// forwards that copy as a new message.
	if c.seen.check(payload, m.Duplicate() || req.Transaction != "") {
		c.log.Info("ignoring a re-delivered request", "topic", m.Topic(), "transaction", req.Transaction)
		return
	}
	if err != nil {
		c.log.Info("bad request", "err", err, "transaction", req.Transaction)
		c.Respond(ErrorResponse(req.Transaction, ErrWordInvalid+": "+err.Error()))
		return
	}
	req.Received = time.Now()
	if !c.h.Enqueue(req) {
		c.Respond(ErrorResponse(req.Transaction, ErrWordBusy+": the queue is full"))
	}
}

func (c *Client) handleSetting(kind SettingKind, m paho.Message) {
	s, err := ParseSetting(kind, m.Payload(), c.cfg.Limits)
	if err != nil {
		c.log.Warn("bad setting", "topic", m.Topic(), "err", err)
		return
	}
	if c.h.Setting != nil {
		c.h.Setting(s)
	}
}

// Respond publishes resp on <p>/response/ask through the outbox.
func (c *Client) Respond(resp Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("mqtt: response: %w", err)
	}
	return c.send(c.topics.ResponseAsk, b)
}

// PublishAnswer publishes ev on <p>/answer through the outbox and, for an
// answer (not an error), the retained <p>/answer/state.
func (c *Client) PublishAnswer(ev AnswerEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("mqtt: answer: %w", err)
	}
	err = c.send(c.topics.Answer, b)
	if ev.EventType == EventAnswer {
		st, _ := json.Marshal(NewAnswerState(ev))
		c.setRetained(c.topics.AnswerState, st)
	}
	return err
}

// PublishInfo publishes the retained <p>/info.
func (c *Client) PublishInfo(info Info) error { return c.setRetainedJSON(c.topics.Info, info) }

// PublishStatus publishes the retained <p>/status.
func (c *Client) PublishStatus(s Status) error { return c.setRetainedJSON(c.topics.Status, s) }

// PublishSnapshot publishes the retained <p>/snapshot (JPEG bytes).
func (c *Client) PublishSnapshot(jpeg []byte) error {
	c.setRetained(c.topics.Snapshot, append([]byte(nil), jpeg...))
	return nil
}

// PublishStanding publishes the retained state topics of the standing
// question: question text, mode, interval in seconds, enabled ON/OFF.
func (c *Client) PublishStanding(s Standing) error {
	c.setRetained(c.topics.QuestionState, []byte(s.Question))
	c.setRetained(c.topics.ModeState, []byte(s.Mode))
	c.setRetained(c.topics.IntervalState, []byte(strconv.FormatFloat(s.Interval.Seconds(), 'f', -1, 64)))
	on := "OFF"
	if s.Enabled {
		on = "ON"
	}
	c.setRetained(c.topics.EnabledState, []byte(on))
	return nil
}

func (c *Client) setRetainedJSON(topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("mqtt: %s: %w", topic, err)
	}
	c.setRetained(topic, b)
	return nil
}

// setRetained remembers the newest payload of a retained topic (re-sent on
// every connection) and publishes it now when connected.
func (c *Client) setRetained(topic string, payload []byte) {
	c.mu.Lock()
	if _, ok := c.retained[topic]; !ok {
		c.order = append(c.order, topic)
	}
	c.retained[topic] = payload
	c.mu.Unlock()
	if c.pc.IsConnectionOpen() {
		c.pc.Publish(topic, 1, true, payload)
	}
}

// send appends a message to the outbox and wakes the sender.
func (c *Client) send(topic string, payload []byte) error {
	_, dropped, err := c.box.append(topic, payload)
	for _, d := range dropped {
		c.log.Warn("outbox full: dropped the oldest message", "id", d.ID, "topic", d.Topic, "max", c.cfg.MaxOutbox)
	}
	if err != nil {
		// The disk failed: still try to deliver, without the guarantee.
		c.log.Error("cannot keep a message on disk", "topic", topic, "err", err)
		if c.pc.IsConnectionOpen() {
			c.pc.Publish(topic, 1, false, payload)
		}
		return err
	}
	c.kick()
	return nil
}

func (c *Client) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sender publishes outbox entries whenever woken.
func (c *Client) sender() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
			c.flush()
		}
	}
}

// flush hands every outbox entry not yet in flight to paho, in id order,
// while the connection is up. An entry stays on disk until its publish
// token completes: paho completes it on the broker's PUBACK, or when paho
// itself takes the message over for re-sending from its file store after a
// reconnection; either way the entry is then safe to delete.
func (c *Client) flush() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	for _, e := range c.box.list() {
		if !c.pc.IsConnectionOpen() || !c.resumed.Load() {
			return
		}
		// The list is a snapshot: an entry in it may have been acknowledged
		// (removed, then taken off inflight by await) since, and must not be
		// published a second time. await removes before it clears inflight,
		// so an entry that is not in flight here is either new or gone.
		c.mu.Lock()
		skip := c.inflight[e.ID] || !c.box.has(e.ID)
		if !skip {
			c.inflight[e.ID] = true
		}
		c.mu.Unlock()
		if skip {
			continue
		}
		tok := c.pc.Publish(e.Topic, 1, false, e.Payload)
		c.wg.Add(1)
		go c.await(e, tok)
	}
}

func (c *Client) await(e outboxEntry, tok paho.Token) {
	defer c.wg.Done()
	select {
	case <-tok.Done():
	case <-c.done:
		return
	}
	err := tok.Error()
	if err == nil {
		if rerr := c.box.remove(e.ID); rerr != nil {
			c.log.Error("outbox", "err", rerr)
		}
	}
	c.mu.Lock()
	delete(c.inflight, e.ID)
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("publish failed; kept in the outbox", "id", e.ID, "topic", e.Topic, "err", err)
		if !errors.Is(err, paho.ErrNotConnected) {
			time.AfterFunc(time.Second, c.kick)
		}
	}
}

// dedupe remembers hashes of recent request payloads, to drop a request
// the broker delivers again (DUP flag set) after a lost acknowledgement.
type dedupe struct {
	mu   sync.Mutex
	ring []uint64
	pos  int
	set  map[uint64]int
}

func newDedupe(n int) *dedupe {
	return &dedupe{ring: make([]uint64, n), set: map[uint64]int{}}
}

// check records payload and reports whether it is a re-delivery: dup set
// and the same payload seen recently.
func (d *dedupe) check(payload []byte, dup bool) bool {
	h := fnv.New64a()
	h.Write(payload)
	sum := h.Sum64()
	d.mu.Lock()
	defer d.mu.Unlock()
	if dup && d.set[sum] > 0 {
		return true
	}
	old := d.ring[d.pos]
	if d.set[old] > 0 {
		if d.set[old]--; d.set[old] == 0 {
			delete(d.set, old)
		}
	}
	d.ring[d.pos] = sum
	d.set[sum]++
	d.pos = (d.pos + 1) % len(d.ring)
	return false
}
