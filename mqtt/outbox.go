package mqtt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// outboxMagic starts every outbox entry file.
const outboxMagic = "PALIDOB1"

// outboxEntry is one message waiting for its broker acknowledgement.
type outboxEntry struct {
	ID      uint64
	Topic   string
	Payload []byte
}

// outbox keeps every response and answer on disk, one file per entry
// (written to a temporary name, fsynced, renamed, directory fsynced), until
// the broker acknowledged it. Entries are kept in memory too, in id order.
type outbox struct {
	dir string
	max int

	mu      sync.Mutex
	next    uint64
	entries []outboxEntry // ascending ID
}

// openOutbox reads the entries left in dir by a previous run. Files that
// cannot be read back are moved aside (suffix .bad) and reported in the
// returned warnings.
func openOutbox(dir string, max int) (*outbox, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("outbox: %w", err)
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("outbox: %w", err)
	}
	o := &outbox{dir: dir, max: max, next: 1}
	var warnings []string
	for _, de := range names {
		name := de.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name)) // an append that never completed
			continue
		}
		base, ok := strings.CutSuffix(name, ".msg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(base, 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		var e outboxEntry
		if err == nil {
			e, err = decodeEntry(data)
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("outbox entry %s unreadable (%v): moved aside", name, err))
			os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".bad"))
			continue
		}
		e.ID = id
		o.entries = append(o.entries, e)
		if id >= o.next {
			o.next = id + 1
		}
	}
	sort.Slice(o.entries, func(i, j int) bool { return o.entries[i].ID < o.entries[j].ID })
	return o, warnings, nil
}

func encodeEntry(topic string, payload []byte) []byte {
	body := make([]byte, 0, 2+len(topic)+len(payload))
	body = binary.BigEndian.AppendUint16(body, uint16(len(topic)))
	body = append(body, topic...)
	body = append(body, payload...)
	out := make([]byte, 0, len(outboxMagic)+4+len(body))
	out = append(out, outboxMagic...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	return append(out, body...)
}

func decodeEntry(data []byte) (outboxEntry, error) {
	var e outboxEntry
	if len(data) < len(outboxMagic)+6 || !bytes.Equal(data[:len(outboxMagic)], []byte(outboxMagic)) {
		return e, errors.New("not an outbox entry")
	}
	sum := binary.BigEndian.Uint32(data[len(outboxMagic):])
	body := data[len(outboxMagic)+4:]
	if crc32.ChecksumIEEE(body) != sum {
		return e, errors.New("checksum mismatch")
	}
	n := int(binary.BigEndian.Uint16(body))
	if 2+n > len(body) {
		return e, errors.New("topic runs past the end")
	}
	e.Topic = string(body[2 : 2+n])
	e.Payload = append([]byte(nil), body[2+n:]...)
	return e, nil
}

func (o *outbox) path(id uint64) string {
	return filepath.Join(o.dir, fmt.Sprintf("%020d.msg", id))
}

// append stores a message durably and returns its id. When the outbox is
// full the oldest entries are dropped (and returned) to make room.
func (o *outbox) append(topic string, payload []byte) (uint64, []outboxEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.next
	o.next++
	final := o.path(id)
	tmp := filepath.Join(o.dir, fmt.Sprintf(".%020d.tmp", id))
	if err := writeSynced(tmp, encodeEntry(topic, payload)); err != nil {
		os.Remove(tmp)
		return 0, nil, fmt.Errorf("outbox: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return 0, nil, fmt.Errorf("outbox: %w", err)
	}
	if err := syncDir(o.dir); err != nil {
		return 0, nil, fmt.Errorf("outbox: %w", err)
	}
	o.entries = append(o.entries, outboxEntry{ID: id, Topic: topic, Payload: payload})
	var dropped []outboxEntry
	for o.max > 0 && len(o.entries) > o.max {
		dropped = append(dropped, o.entries[0])
		os.Remove(o.path(o.entries[0].ID))
		o.entries = o.entries[1:]
	}
	return id, dropped, nil
}

// remove deletes an acknowledged entry; removing an absent id is a no-op.
func (o *outbox) remove(id uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	i, ok := o.find(id)
	if !ok {
		return nil
	}
	o.entries = append(o.entries[:i], o.entries[i+1:]...)
	if err := os.Remove(o.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// has reports whether id is still waiting (not yet removed).
func (o *outbox) has(id uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.find(id)
	return ok
}

// find returns id's index in o.entries; o.mu must be held.
func (o *outbox) find(id uint64) (int, bool) {
	i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].ID >= id })
	return i, i < len(o.entries) && o.entries[i].ID == id
}

// list returns the waiting entries in id order (payloads shared, read only).
func (o *outbox) list() []outboxEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]outboxEntry(nil), o.entries...)
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
