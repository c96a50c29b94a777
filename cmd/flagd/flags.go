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

// tlsFlags defines the flags of TLS to a server (-PREFIX.tls, -PREFIX.tls-ca,
// -PREFIX.tls-cert, -PREFIX.tls-key); server names it in their help.
func tlsFlags(e *envFlags, prefix, server string) (on *bool, ca, cert, key *string) {
	on = e.Bool(prefix+".tls", false, "reach "+server+" over TLS, checking certificates against the system's CAs (or -"+prefix+".tls-ca)")
	ca = e.String(prefix+".tls-ca", "", "PEM file of the CA certificates that sign "+server+"'s certificates (turns TLS on)")
	cert = e.String(prefix+".tls-cert", "", "PEM client certificate, for when "+server+" asks for one (with -"+prefix+".tls-key; turns TLS on)")
	key = e.String(prefix+".tls-key", "", "PEM key of -"+prefix+".tls-cert")
	return on, ca, cert, key
}

// kafkaAuthFlags defines the flags of TLS and SASL to the Kafka brokers;
// the function it returns reads them after parsing.
func kafkaAuthFlags(e *envFlags) func() feed.KafkaAuthConfig {
	useTLS, ca, cert, key := tlsFlags(e, "kafka", "Kafka")
	mech := e.String("kafka.sasl", "", "SASL mechanism: plain (only with TLS), scram-sha-256 or scram-sha-512")
	user := e.String("kafka.sasl-user", "", "SASL user name")
	pw := e.String("kafka.sasl-password-file", "", "file holding the SASL password (one line)")
	return func() feed.KafkaAuthConfig {
		return feed.KafkaAuthConfig{TLS: *useTLS, CAFile: *ca, CertFile: *cert, KeyFile: *key,
			SASL: *mech, User: *user, PasswordFile: *pw}
	}
}

// redisAuthFlags defines the flags of TLS and credentials to Redis; the
// function it returns reads them after parsing.
func redisAuthFlags(e *envFlags) func() feed.RedisAuthConfig {
	useTLS, ca, cert, key := tlsFlags(e, "redis", "Redis")
	user := e.String("redis.user", "", "Redis ACL user (needs -redis.password-file)")
	pw := e.String("redis.password-file", "", "file holding the Redis password (one line): the user's, or without -redis.user the default user's")
	return func() feed.RedisAuthConfig {
		return feed.RedisAuthConfig{TLS: *useTLS, CAFile: *ca, CertFile: *cert, KeyFile: *key, User: *user, PasswordFile: *pw}
	}
}
