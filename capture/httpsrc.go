package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// maxPart bounds one JPEG of an MJPEG-over-HTTP stream.
const maxPart = 32 << 20

// openHTTP reads an IP camera's MJPEG stream (multipart/x-mixed-replace
// of JPEG parts), or polls a snapshot URL serving a single JPEG at the
// configured rate. A failed or stalled connection is reopened with
// backoff.
func openHTTP(url string, opts Options) (Source, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("capture: http source %q: want an http:// or https:// URL", url)
	}
	client := &http.Client{} // no overall timeout: the stream is endless; stalls are timed per frame
	return newLive("http:"+url, opts, func(ctx context.Context) (stream, error) {
		return openHTTPStream(ctx, client, url, opts)
	})
}

type httpStream struct {
	cancel context.CancelFunc
	frames chan httpResult
	stall  time.Duration
}

type httpResult struct {
	img image.Image
	at  time.Time
	err error
}

func openHTTPStream(parent context.Context, client *http.Client, url string, opts Options) (*httpStream, error) {
	ctx, cancel := context.WithCancel(parent)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("capture: %s: %v", url, err)
	}
	// The response headers must come within the stall timeout.
	t := time.AfterFunc(opts.StallTimeout, cancel)
	resp, err := client.Do(req)
	t.Stop()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("capture: %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("capture: %s: HTTP status %s", url, resp.Status)
	}
	s := &httpStream{cancel: cancel, frames: make(chan httpResult, 1), stall: opts.StallTimeout}
	ct := resp.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		go s.readMultipart(ctx, resp.Body, params["boundary"])
	case mt == "image/jpeg" || mt == "image/jpg":
		s.stall = max(s.stall, 3*opts.pace())
		go s.poll(ctx, client, url, resp.Body, opts.pace())
	default:
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("capture: %s: Content-Type %q is neither multipart/x-mixed-replace nor image/jpeg", url, ct)
	}
	return s, nil
}

func (s *httpStream) send(ctx context.Context, r httpResult) bool {
	select {
	case s.frames <- r:
		return r.err == nil
	case <-ctx.Done():
		return false
	}
}

// readMultipart reads JPEG parts until the stream fails.
func (s *httpStream) readMultipart(ctx context.Context, body io.ReadCloser, boundary string) {
	defer body.Close()
	br := bufio.NewReaderSize(body, 64<<10)
	// Cameras disagree on whether the header's boundary includes the
	// leading "--": take the delimiter from the first line of the body.
	first, err := peekLine(br)
	if err != nil {
		s.send(ctx, httpResult{err: fmt.Errorf("capture: MJPEG stream: %v", err)})
		return
	}
	if strings.HasPrefix(first, "--") {
		boundary = strings.TrimPrefix(first, "--")
	}
	if boundary == "" {
		s.send(ctx, httpResult{err: fmt.Errorf("capture: MJPEG stream: no multipart boundary")})
		return
	}
	pr := &partReader{br: br, tp: textproto.NewReader(br), delim: "--" + boundary}
	for {
		data, err := pr.next()
		if err != nil {
			s.send(ctx, httpResult{err: fmt.Errorf("capture: MJPEG stream: %v", err)})
			return
		}
		at := time.Now()
		img, err := DecodeMJPEG(data)
		if err != nil {
			continue // a damaged frame; a stream of them ends as a stall
		}
		if !s.send(ctx, httpResult{img: img, at: at}) {
			return
		}
	}
}

// partReader splits a multipart/x-mixed-replace body. Unlike
// mime/multipart it honours a part's Content-Length, so a frame is
// delivered as soon as it is complete rather than when the next
// boundary arrives.
type partReader struct {
	br     *bufio.Reader
	tp     *textproto.Reader
	delim  string
	atPart bool // the delimiter line was consumed already
}

func (p *partReader) next() ([]byte, error) {
	if !p.atPart {
		// Skip up to the delimiter line (CRLF after the last part, or a
		// preamble).
		for i := 0; ; i++ {
			line, err := p.tp.ReadLine()
			if err != nil {
				if err == io.EOF {
					return nil, fmt.Errorf("stream ended")
				}
				return nil, err
			}
			line = strings.TrimSpace(line)
			if line == p.delim+"--" {
				return nil, fmt.Errorf("stream ended")
			}
			if line == p.delim {
				break
			}
			if i > 64 {
				return nil, fmt.Errorf("no boundary %q", p.delim)
			}
		}
	}
	p.atPart = false
	hdr, err := p.tp.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("part header: %v", err)
	}
	if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 || n > maxPart {
			return nil, fmt.Errorf("part Content-Length %q invalid", cl)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(p.br, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	// No length: read lines up to the next delimiter.
	var data []byte
	for {
		line, err := p.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			data = append(data, line...)
			if len(data) > maxPart {
				return nil, fmt.Errorf("part larger than %d bytes", maxPart)
			}
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if t := strings.TrimSpace(string(line)); strings.HasPrefix(t, p.delim) && (t == p.delim || t == p.delim+"--") {
			data = bytes.TrimSuffix(data, []byte("\n"))
			data = bytes.TrimSuffix(data, []byte("\r"))
			p.atPart = t == p.delim
			return data, nil
		}
		data = append(data, line...)
		if len(data) > maxPart {
			return nil, fmt.Errorf("part larger than %d bytes", maxPart)
		}
	}
}

// peekLine returns the first non-empty line without consuming it.
func peekLine(br *bufio.Reader) (string, error) {
	for n := 64; ; n *= 2 {
		b, err := br.Peek(n)
		text := strings.TrimLeft(string(b), "\r\n")
		if i := strings.IndexAny(text, "\r\n"); i >= 0 {
			return strings.TrimSpace(text[:i]), nil
		}
		if err != nil {
			if err == bufio.ErrBufferFull || n >= 4096 {
				return "", fmt.Errorf("no boundary line")
			}
			return "", err
		}
	}
}

// poll fetches a snapshot URL repeatedly.
func (s *httpStream) poll(ctx context.Context, client *http.Client, url string, body io.ReadCloser, every time.Duration) {
	for {
		data, err := io.ReadAll(io.LimitReader(body, maxPart+1))
		body.Close()
		if err == nil && len(data) > maxPart {
			err = fmt.Errorf("image larger than %d bytes", maxPart)
		}
		at := time.Now()
		var img image.Image
		if err == nil {
			img, err = DecodeMJPEG(data)
		}
		if err != nil {
			s.send(ctx, httpResult{err: fmt.Errorf("capture: %s: %v", url, err)})
			return
		}
		if !s.send(ctx, httpResult{img: img, at: at}) {
			return
		}
		select {
		case <-time.After(time.Until(at.Add(every))):
		case <-ctx.Done():
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			s.send(ctx, httpResult{err: err})
			return
		}
		resp, err := client.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			err = fmt.Errorf("HTTP status %s", resp.Status)
		}
		if err != nil {
			s.send(ctx, httpResult{err: fmt.Errorf("capture: %s: %v", url, err)})
			return
		}
		body = resp.Body
	}
}

func (s *httpStream) next(ctx context.Context) (image.Image, time.Time, error) {
	t := time.NewTimer(s.stall)
	defer t.Stop()
	select {
	case r := <-s.frames:
		return r.img, r.at, r.err
	case <-t.C:
		return nil, time.Time{}, fmt.Errorf("capture: no frame for %v", s.stall)
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

func (s *httpStream) close() error {
	s.cancel()
	return nil
}
