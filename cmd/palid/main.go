// Command palid is the on-device vision-language daemon and its tools.
//
// Each subcommand lives in a file of its own in this directory and registers
// itself in an init function with register. Exit codes: 0 ok, 1 runtime
// failure, 2 bad usage or bad input.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of palid.
type command struct {
	// summary is the one-line description shown by "palid help".
	summary string
	// run executes the subcommand with its arguments (without the name).
	run func(args []string) error
}

var commands = map[string]command{}

// register adds a subcommand; called from init functions only.
func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("palid: duplicate command " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// usageError marks an error as bad usage or bad input (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badInput wraps err so that palid exits with code 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// badInputf formats a bad-usage error (exit code 2).
func badInputf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func usage() {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: palid <command> [flags] [args]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-14s %s\n", n, commands[n].summary)
	}
	b.WriteString("\nRun 'palid <command> -h' for the flags of a command.\n")
	fmt.Fprint(os.Stderr, b.String())
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes palid with args and returns the process exit code.
func run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "palid: unknown command %q (run 'palid help')\n", args[0])
		return 2
	}
	err := cmd.run(args[1:])
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(os.Stderr, "palid %s: %v\n", args[0], err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
