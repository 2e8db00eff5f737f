package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// openFFmpeg runs ffmpeg on input (an RTSP or HTTP URL, a video file,
// anything ffmpeg reads) and reads the MJPEG frames it writes to stdout.
// A network input that fails is restarted with backoff; a local file ends
// with io.EOF under opts.Once, and is replayed otherwise.
func openFFmpeg(input string, opts Options) (Source, error) {
	bin := opts.FFmpeg
	if bin == "" {
		bin = "ffmpeg"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("capture: ffmpeg source needs ffmpeg: %v", err)
	}
	network := strings.Contains(input, "://") && !strings.HasPrefix(input, "file://")
	return newLive("ffmpeg:"+input, opts, func(ctx context.Context) (stream, error) {
		return startFFmpeg(ctx, path, input, network, opts)
	})
}

// ffmpegArgs builds the command line: MJPEG frames, highest quality, on
// stdout; real-time pacing for files unless unpaced.
func ffmpegArgs(input string, network bool, opts Options) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin"}
	if strings.HasPrefix(input, "rtsp://") {
		args = append(args, "-rtsp_transport", "tcp")
	}
	if !network && !opts.Unpaced {
		args = append(args, "-re")
	}
	args = append(args, "-i", input, "-an", "-sn")
	if opts.FPS > 0 {
		args = append(args, "-vf", "fps="+strconv.FormatFloat(opts.FPS, 'f', -1, 64))
	}
	return append(args, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "2", "-pix_fmt", "yuvj420p", "pipe:1")
}

type ffmpegStream struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	frames  chan httpResult
	stall   time.Duration
	stderr  *tailBuffer
	eofOK   bool // a file input ending is the end, not a failure
	once    bool
	wait    sync.Once
	waitErr error
	first   *httpResult // read by the open, returned by the first next
}

func startFFmpeg(parent context.Context, bin, input string, network bool, opts Options) (*ffmpegStream, error) {
	ctx, cancel := context.WithCancel(parent)
	cmd := exec.CommandContext(ctx, bin, ffmpegArgs(input, network, opts)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("capture: ffmpeg: %v", err)
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("capture: ffmpeg: %v", err)
	}
	s := &ffmpegStream{cmd: cmd, cancel: cancel, frames: make(chan httpResult, 1),
		stall: opts.StallTimeout, stderr: tail, eofOK: !network, once: opts.Once}
	go s.read(ctx, out)
	// Wait for the first frame so that a bad input fails the open with
	// ffmpeg's own message.
	t := time.NewTimer(opts.StallTimeout)
	defer t.Stop()
	select {
	case r := <-s.frames:
		if r.err != nil {
			s.close()
			if errors.Is(r.err, io.EOF) {
				return nil, fmt.Errorf("capture: ffmpeg: %s gave no frames", input)
			}
			return nil, r.err
		}
		s.first = &r
	case <-t.C:
		s.close()
		return nil, fmt.Errorf("capture: ffmpeg: no frame from %s within %v: %s", input, opts.StallTimeout, tail.String())
	}
	return s, nil
}

func (s *ffmpegStream) read(ctx context.Context, out io.Reader) {
	br := bufio.NewReaderSize(out, 256<<10)
	for {
		data, err := ReadJPEG(br, maxPart)
		at := time.Now()
		if err != nil {
			werr := s.waitExit()
			switch {
			case err == io.EOF && werr == nil && s.eofOK:
				err = io.EOF
			case werr != nil:
				err = fmt.Errorf("capture: ffmpeg: %v: %s", werr, s.stderr.String())
			default:
				err = fmt.Errorf("capture: ffmpeg output: %v", err)
			}
			select {
			case s.frames <- httpResult{err: err}:
			case <-ctx.Done():
			}
			return
		}
		img, err := DecodeMJPEG(data)
		if err != nil {
			continue
		}
		select {
		case s.frames <- httpResult{img: img, at: at}:
		case <-ctx.Done():
			return
		}
	}
}

func (s *ffmpegStream) waitExit() error {
	s.wait.Do(func() { s.waitErr = s.cmd.Wait() })
	return s.waitErr
}

func (s *ffmpegStream) next(ctx context.Context) (image.Image, time.Time, error) {
	if r := s.first; r != nil {
		s.first = nil
		return r.img, r.at, nil
	}
	t := time.NewTimer(s.stall)
	defer t.Stop()
	select {
	case r := <-s.frames:
		if errors.Is(r.err, io.EOF) && !s.once {
			// Replay the file: report it as a failure that reopens at once.
			return nil, time.Time{}, errReplay
		}
		return r.img, r.at, r.err
	case <-t.C:
		return nil, time.Time{}, fmt.Errorf("capture: ffmpeg: no frame for %v", s.stall)
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
}

// errReplay asks the live wrapper to reopen a finished file.
var errReplay = errors.New("capture: input ended, replaying")

func (s *ffmpegStream) close() error {
	s.cancel()
	go s.waitExit() // reap
	return nil
}

// tailBuffer keeps the last bytes written (ffmpeg's error output).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil)))
}

// ReadJPEG reads one JPEG image (SOI to EOI) from a stream of
// concatenated JPEGs, skipping any bytes before the SOI marker. It
// returns io.EOF when the stream ends between images and an error when it
// ends inside one or the image exceeds limit bytes.
func ReadJPEG(r *bufio.Reader, limit int) ([]byte, error) {
	// Find SOI.
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != 0xFF {
			continue
		}
		c, err := r.ReadByte()
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if c == 0xD8 {
			break
		}
		if c == 0xFF {
			r.UnreadByte()
		}
	}
	out := []byte{0xFF, 0xD8}
	get := func() (byte, error) {
		b, err := r.ReadByte()
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		if err == nil {
			out = append(out, b)
			if len(out) > limit {
				return 0, fmt.Errorf("JPEG larger than %d bytes", limit)
			}
		}
		return b, err
	}
	inScan := false
	for {
		b, err := get()
		if err != nil {
			return nil, err
		}
		if b != 0xFF {
			if inScan {
				continue
			}
			return nil, fmt.Errorf("JPEG: expected a marker, got 0x%02X", b)
		}
		m, err := get()
		if err != nil {
			return nil, err
		}
		for m == 0xFF { // fill bytes
			if m, err = get(); err != nil {
				return nil, err
			}
		}
		switch {
		case m == 0x00 && inScan: // stuffed byte
			continue
		case m >= 0xD0 && m <= 0xD7: // restart markers
			continue
		case m == 0xD9: // EOI
			return out, nil
		case m == 0x01 || m == 0x00:
			continue
		}
		// A marker segment with a length.
		hi, err := get()
		if err != nil {
			return nil, err
		}
		lo, err := get()
		if err != nil {
			return nil, err
		}
		n := int(hi)<<8 | int(lo)
		if n < 2 {
			return nil, fmt.Errorf("JPEG: marker 0x%02X has length %d", m, n)
		}
		for i := 0; i < n-2; i++ {
			if _, err := get(); err != nil {
				return nil, err
			}
		}
		inScan = m == 0xDA
	}
}
