package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/planflag/planflag/feed"
)

// envName is a flag's environment fallback: -http.addr → FLAGD_HTTP_ADDR.
func envName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "FLAGD_" + strings.ToUpper(r.Replace(flagName))
}

// envFlags registers flags whose defaults come from the environment when set
// there; a malformed environment value is an error naming the variable.
type envFlags struct {
	fs      *flag.FlagSet
	errs    []string
	fromEnv map[string]bool // flags whose value the environment gave
}

func (e *envFlags) env(name string) (string, bool) {
	v, ok := os.LookupEnv(envName(name))
	if ok {
		if e.fromEnv == nil {
			e.fromEnv = map[string]bool{}
		}
		e.fromEnv[name] = true
	}
	return v, ok
}

// given returns how a flag was set — "-name" on the command line, or
// "FLAGD_NAME (-name)" from the environment — or "" when it was not.
// Call it after Parse.
func (e *envFlags) given(name string) string {
	set := false
	e.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	switch {
	case set:
		return "-" + name
	case e.fromEnv[name]:
		return envName(name) + " (-" + name + ")"
	}
	return ""
}

func (e *envFlags) usage(name, help string) string {
	return help + " (env " + envName(name) + ")"
}

func (e *envFlags) String(name, def, help string) *string {
	if v, ok := e.env(name); ok {
		def = v
	}
	return e.fs.String(name, def, e.usage(name, help))
}

func (e *envFlags) Int(name string, def int, help string) *int {
	if v, ok := e.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Sprintf("%s: not an integer", envName(name)))
		} else {
			def = n
		}
	}
	return e.fs.Int(name, def, e.usage(name, help))
}

func (e *envFlags) Bool(name string, def bool, help string) *bool {
	if v, ok := e.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Sprintf("%s: not true or false", envName(name)))
		} else {
			def = b
		}
	}
	return e.fs.Bool(name, def, e.usage(name, help))
}

func (e *envFlags) Duration(name string, def time.Duration, help string) *time.Duration {
	if v, ok := e.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Sprintf("%s: not a duration (e.g. 10s)", envName(name)))
		} else {
			def = d
		}
	}
	return e.fs.Duration(name, def, e.usage(name, help))
}

// unknownEnv returns the FLAGD_… variables set in the environment that
// name no flag of fs (FLAGD_AUDIT_FILES for FLAGD_AUDIT_FILE), which would
// otherwise be ignored without a word.
func (e *envFlags) unknownEnv() []string {
	known := map[string]bool{}
	e.fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FLAGD_") && !known[name] {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (e *envFlags) err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("environment: %s", strings.Join(e.errs, "; "))
}

// redisAuthFlags defines the flags of TLS and credentials to Redis; the
// function it returns reads them after parsing.
func redisAuthFlags(e *envFlags) func() feed.RedisAuthConfig {
	useTLS := e.Bool("redis.tls", false, "reach Redis over TLS (also on with any -redis.tls-… file)")
	ca, cert, key := feed.TLSFlags(e, "redis", "Redis")
	user := e.String("redis.user", "", "Redis ACL user (needs -redis.password-file)")
	pw := e.String("redis.password-file", "", "file holding the Redis password (one line): the user's, or without -redis.user the default user's")
	return func() feed.RedisAuthConfig {
		return feed.RedisAuthConfig{TLS: *useTLS, CAFile: *ca, CertFile: *cert, KeyFile: *key, User: *user, PasswordFile: *pw}
	}
}

// platformFlags defines the flags of the care-plan platform client's
// credentials; the function it returns reads them after parsing.
func platformFlags(e *envFlags) func() platformAuth {
	token := e.String("platform.token-file", "", "file holding the bearer token the care-plan platform's API takes (one line)")
	ca, cert, key := feed.TLSFlags(e, "platform", "the care-plan platform")
	return func() platformAuth {
		return platformAuth{TokenFile: *token, CAFile: *ca, CertFile: *cert, KeyFile: *key}
	}
}
