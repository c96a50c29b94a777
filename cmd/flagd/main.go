// Command flagd is the planflag service: it tells call-handling systems
// whether a caller has an urgent care plan. `flagd lookup` is its batch form.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flagd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "lookup" {
		return runLookup(args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	if len(args) == 1 && args[0] == "-demo" {
		return runDemo(os.Stdout)
	}
	return fmt.Errorf("usage: flagd -demo | flagd lookup -events FILE.jsonl < requests.jsonl")
}

// envOr returns the environment variable's value, or def.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
