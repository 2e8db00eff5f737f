package main

import (
	"fmt"
	"runtime/debug"
)

// version is set at link time by make dist (-X main.version=...).
var version = "dev"

func init() {
	register("version", "print the version and build information", func(args []string) error {
		fs := newFlags("version", "")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		commit := "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
		fmt.Printf("palid %s (commit %s)\n", version, commit)
		return nil
	})
}
