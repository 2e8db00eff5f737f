package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/palid/palid/mqtt"
)

func init() {
	register("query", "ask a running daemon over MQTT", runQuery)
}

func runQuery(args []string) error {
	fs := newFlags("query", "QUESTION")
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	device := fs.String("device", "palid", "device id of the daemon")
	video := fs.Bool("video", false, "ask about a window of frames, not the newest frame")
	frames := fs.Int("frames", 0, "frames of the window (with --video; default: the daemon's)")
	format := fs.String("format", "text", "answer format: text, yes_no or json")
	asJSON := fs.Bool("json", false, "print the whole response as JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if q == "" {
		return badInputf("no question given")
	}
	req := mqtt.Request{Question: q, Mode: mqtt.ModeFrame, Format: mqtt.Format(*format), TimeoutS: timeout.Seconds()}
	if *video {
		req.Mode = mqtt.ModeVideo
		req.Frames = *frames
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+5*time.Second)
	defer cancel()
	resp, err := mqtt.Query(ctx, *broker, *device, req)
	if err != nil {
		return fmt.Errorf("asking %s on %s: %w", *device, *broker, err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(resp); err != nil {
			return err
		}
	} else if resp.Status == mqtt.StatusOK && resp.Data != nil {
		fmt.Println(resp.Data.Answer)
	}
	if resp.Status != mqtt.StatusOK {
		if strings.HasPrefix(resp.Error, mqtt.ErrWordInvalid) {
			return badInputf("%s", resp.Error)
		}
		return fmt.Errorf("%s", resp.Error)
	}
	return nil
}
