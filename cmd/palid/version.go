package main

import (
	"encoding/json"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/palid/palid/neon"
	"golang.org/x/sys/cpu"
)

// version and commit are set at link time (-X main.version=...), by make
// dist and by the Buildroot package; without them the module version and
// the VCS stamp Go records in the binary are used.
var (
	version = "dev"
	commit  = ""
)

// buildInfo is what palid version reports.
type buildInfo struct {
	Version    string   `json:"version"`
	Commit     string   `json:"commit"`
	CommitTime string   `json:"commit_time,omitempty"`
	Modified   bool     `json:"modified"`
	Go         string   `json:"go"`
	Platform   string   `json:"platform"`
	KernelPath string   `json:"kernel_path"`
	Kernels    []string `json:"kernels"`
	CPU        []string `json:"cpu_features"`
}

func init() {
	register("version", "print the version, commit and the compute kernels this CPU uses", func(args []string) error {
		fs := newFlags("version", "")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return badInputf("version takes no arguments, got %q", fs.Arg(0))
		}
		bi := readBuildInfo()
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(bi)
		}
		commit := bi.Commit
		if bi.Modified {
			commit += " (modified)"
		}
		fmt.Printf("palid %s\ncommit   %s\n", bi.Version, commit)
		if bi.CommitTime != "" {
			fmt.Printf("date     %s\n", bi.CommitTime)
		}
		fmt.Printf("built    %s %s\n", bi.Go, bi.Platform)
		fmt.Printf("kernels  %s: %s\n", bi.KernelPath, strings.Join(bi.Kernels, " "))
		fmt.Printf("cpu      %s\n", strings.Join(bi.CPU, " "))
		return nil
	})
}

// readBuildInfo collects the version, the VCS stamp Go records at build
// time, and the kernels dispatch chose for this CPU.
func readBuildInfo() buildInfo {
	b := buildInfo{
		Version:    version,
		Commit:     commit,
		Go:         goruntime.Version(),
		Platform:   goruntime.GOOS + "/" + goruntime.GOARCH,
		KernelPath: neon.KernelPath(),
		Kernels:    neon.Kernels(),
		CPU:        cpuFeatures(),
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// cpuFeatures lists the CPU features that matter to palid's kernels, as
// golang.org/x/sys/cpu reports them.
func cpuFeatures() []string {
	var fs []struct {
		name string
		has  bool
	}
	add := func(name string, has bool) {
		fs = append(fs, struct {
			name string
			has  bool
		}{name, has})
	}
	switch goruntime.GOARCH {
	case "arm64":
		add("asimd", cpu.ARM64.HasASIMD)
		add("fphp", cpu.ARM64.HasFPHP)
		add("asimdhp", cpu.ARM64.HasASIMDHP)
		add("asimddp", cpu.ARM64.HasASIMDDP)
		add("i8mm", cpu.ARM64.HasI8MM)
		add("asimdfhm", cpu.ARM64.HasASIMDFHM)
		add("sve", cpu.ARM64.HasSVE)
		add("sve2", cpu.ARM64.HasSVE2)
		add("atomics", cpu.ARM64.HasATOMICS)
	case "amd64":
		add("sse4.2", cpu.X86.HasSSE42)
		add("avx", cpu.X86.HasAVX)
		add("avx2", cpu.X86.HasAVX2)
		add("fma", cpu.X86.HasFMA)
		add("f16c", cpu.X86.HasF16C)
		add("avxvnni", cpu.X86.HasAVXVNNI)
		add("avx512f", cpu.X86.HasAVX512F)
		add("avx512vl", cpu.X86.HasAVX512VL)
		add("avx512vnni", cpu.X86.HasAVX512VNNI)
	}
	var out []string
	for _, f := range fs {
		if f.has {
			out = append(out, f.name)
		} else {
			out = append(out, "-"+f.name)
		}
	}
	if len(out) == 0 {
		out = []string{"(no feature detection on " + goruntime.GOARCH + ")"}
	}
	return out
}
