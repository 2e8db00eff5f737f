package daemon

import (
	"bytes"
	"image/jpeg"
	"net"
	"time"

	"github.com/palid/palid/neon"
	"github.com/palid/palid/systemd"
)

// httpListener is the HTTP API's socket: the one systemd passes
// (palid.socket, FileDescriptorName=http), else a listener on http.addr,
// else none.
func (d *Daemon) httpListener() (net.Listener, error) {
	if ln, ok, err := systemd.Listener("http"); err != nil {
		return nil, err
	} else if ok {
		return ln, nil
	}
	if d.cfg.HTTP.Addr == "" {
		return nil, nil
	}
	return net.Listen("tcp", d.cfg.HTTP.Addr)
}

// Snapshot returns the newest frame as JPEG (encoded once per frame).
func (d *Daemon) Snapshot() ([]byte, time.Time, bool) {
	f, ok := d.ring.Latest()
	if !ok {
		return nil, time.Time{}, false
	}
	d.mu.Lock()
	if d.frameSeq == f.Seq && d.frameJPEG != nil {
		b := d.frameJPEG
		d.mu.Unlock()
		return b, f.Time, true
	}
	d.mu.Unlock()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, f.Image, &jpeg.Options{Quality: 85}); err != nil {
		return nil, time.Time{}, false
	}
	d.mu.Lock()
	d.frameJPEG, d.frameSeq = buf.Bytes(), f.Seq
	d.mu.Unlock()
	return buf.Bytes(), f.Time, true
}

// Overview describes the daemon for the status page and /healthz.
func (d *Daemon) Overview() Overview {
	ov := Overview{
		Version:  d.opts.Version,
		Model:    d.modelName,
		Backend:  d.vision.Name(),
		Kernels:  neon.Kernels(),
		Queue:    d.queue.Len(),
		QueueMax: d.queue.Cap(),
		Recent:   d.recent.List(),
	}
	d.mu.Lock()
	ov.State = d.state
	ov.Camera = CameraStatus{State: d.camera.String(), Source: d.cfg.Source}
	d.mu.Unlock()
	if f, ok := d.ring.Latest(); ok {
		b := f.Image.Bounds()
		ov.Camera.LastFrame, ov.Camera.Width, ov.Camera.Height = f.Time, b.Dx(), b.Dy()
	}
	return ov
}
