// Command evalpalid measures palid's exact-match accuracy per task on a
// dataset written by `palid synth`, running the model through the engine
// exactly as `palid ask` does (capture.Normalize, runtime.Generate, greedy).
//
//	go run ./train/evalpalid --model DIR [--limit N] DATA...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	_ "image/png"
	"os"
	"path/filepath"
	"sort"

	"github.com/palid/palid/capture"
	"github.com/palid/palid/capture/synth"
	palirt "github.com/palid/palid/runtime"
)

func main() {
	model := flag.String("model", "models/default", "model directory")
	limit := flag.Int("limit", 0, "at most this many questions per dataset (0: all)")
	threads := flag.Int("threads", 2, "worker threads")
	flag.BoolVar(&verbose, "v", false, "print every answer (seed, task, want, got) to stderr")
	flag.Parse()
	if err := run(*model, *limit, *threads, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "evalpalid:", err)
		os.Exit(1)
	}
}

var verbose bool

func run(dir string, limit, threads int, sets []string) error {
	m, err := palirt.Load(dir, palirt.Options{Threads: threads})
	if err != nil {
		return err
	}
	defer m.Close()
	size := m.ImageSize()
	right, total := map[string]int{}, map[string]int{}
	for _, set := range sets {
		f, err := os.Open(filepath.Join(set, "questions.jsonl"))
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		cache := map[string][]float32{} // visual tokens by image file
		n := 0
		for sc.Scan() && (limit == 0 || n < limit) {
			n++
			var r synth.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return err
			}
			// Each image's visual tokens are encoded once for all its
			// questions (Generate on Frames would encode them again).
			var visual [][]float32
			for _, p := range r.Images {
				v, ok := cache[p]
				if !ok {
					img, err := capture.LoadImage(filepath.Join(set, p))
					if err != nil {
						return err
					}
					v, err = m.EncodeImage(context.Background(), palirt.Image{Width: size, Height: size, Pix: capture.Normalize(img, size, size)})
					if err != nil {
						return err
					}
					cache[p] = v
				}
				visual = append(visual, v)
			}
			res, err := m.Generate(context.Background(), palirt.Request{Visual: visual, Prompt: r.Prompt})
			if err != nil {
				return err
			}
			total[r.Task]++
			if verbose {
				fmt.Fprintf(os.Stderr, "%d\t%s\t%q\t%q\n", r.Seed, r.Task, r.Answer, res.Text)
			}
			if res.Text == r.Answer {
				right[r.Task]++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	var tasks []string
	for t := range total {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	acc := map[string]float64{}
	for _, t := range tasks {
		acc[t] = float64(int(10000*float64(right[t])/float64(total[t]))) / 100
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"model": dir, "accuracy": acc, "n": total})
}
