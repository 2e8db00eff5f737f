package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// errHelp is returned when -h was asked for; run treats it as success.
var errHelp = errors.New("help requested")

// newFlags returns a FlagSet for subcommand name whose errors are returned,
// not printed-and-exited, so that run can map them to exit code 2.
func newFlags(name, argsUsage string) *flag.FlagSet {
	fs := flag.NewFlagSet("palid "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: palid %s [flags] %s\n\nflags:\n", name, argsUsage)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args into fs; a bad flag is a usage error (exit 2) and
// -h prints the usage and returns errHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // flag calls it on every error; print only for -h
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return errHelp
		}
		return badInput(err)
	}
	return nil
}
