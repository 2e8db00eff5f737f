package runtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status.
func procStatusKB(name string) (int64, error) {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte(name+":")); ok {
			fields := bytes.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(string(fields[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no %s line", name)
}

// resetPeakRSS returns freed memory to the OS and resets VmHWM to the
// current RSS (Linux: "5" to /proc/self/clear_refs); it returns VmRSS.
func resetPeakRSS() (int64, error) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, err
	}
	return procStatusKB("VmRSS")
}

// BenchmarkVideoQuestionMemory answers a question about 4, 8 and 16
// frames (256 visual tokens each, from the token cache, plus a 16-token
// prompt) with the ViT-B/16 + T5-base model and reports the process's peak
// resident memory (VmHWM) during the request, the resident memory before
// it (the weights: packed copies and mapped pages) and their difference,
// the request's working set. The working set must grow linearly with the
// frames: a 4112 x 4112 score matrix alone would be 68 MB per head.
func BenchmarkVideoQuestionMemory(b *testing.B) {
	if _, err := procStatusKB("VmHWM"); err != nil {
		b.Skipf("no peak RSS to read: %v", err)
	}
	m := loadBench(b)
	ctx := context.Background()
	frame, err := m.EncodeImage(ctx, randomImage(m.ImageSize(), 1))
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int, 15)
	for i := range ids {
		ids[i] = 3 + i
	}
	for _, frames := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("frames=%d", frames), func(b *testing.B) {
			visual := make([][]float32, frames)
			for i := range visual {
				visual[i] = frame
			}
			var base, peak int64
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				var err error
				if base, err = resetPeakRSS(); err != nil {
					b.Skipf("cannot reset the peak RSS: %v", err)
				}
				b.StartTimer()
				if _, err := m.Generate(ctx, Request{Visual: visual, PromptIDs: ids, MaxTokens: 2}); err != nil {
					b.Fatal(err)
				}
				if peak, err = procStatusKB("VmHWM"); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(base)/1024, "base-MB")
			b.ReportMetric(float64(peak)/1024, "peak-MB")
			b.ReportMetric(float64(peak-base)/1024, "work-MB")
		})
	}
}
