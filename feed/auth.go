package feed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// KafkaAuth is how planflag's Kafka clients reach the brokers: over TLS,
// authenticated with SASL, both, or (the zero value) neither. Every client
// flagd makes (the plan-topic reader, the dead-letter, audit and alert
// writers, topic creation) takes the same.
type KafkaAuth struct {
	TLS  *TLSClient     // nil: plaintext
	SASL sasl.Mechanism // nil: no SASL
}

// KafkaAuthConfig is a KafkaAuth as an operator gives it: files and names.
type KafkaAuthConfig struct {
	TLS      bool   // TLS, verifying the brokers against the system's roots or CAFile
	CAFile   string // PEM certificates of the CAs that sign the brokers' certificates (implies TLS)
	CertFile string // PEM client certificate (with KeyFile) for brokers that ask for one (implies TLS)
	KeyFile  string

	SASL         string // plain, scram-sha-256 or scram-sha-512; empty: none
	User         string
	PasswordFile string // the password is read from a file, never given on a command line
}

// FlagSet is where a command defines its flags: a *flag.FlagSet, or one
// that takes their defaults from the environment too (flagd's).
type FlagSet interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
}

// TLSFlags defines the flags of TLS files for a client of a server
// (-PREFIX.tls-ca, -PREFIX.tls-cert, -PREFIX.tls-key); server names it in
// their help.
func TLSFlags(fs FlagSet, prefix, server string) (ca, cert, key *string) {
	ca = fs.String(prefix+".tls-ca", "", "PEM file of the CA certificates that sign "+server+"'s certificates (default: the system's)")
	cert = fs.String(prefix+".tls-cert", "", "PEM client certificate, for when "+server+" asks for one (with -"+prefix+".tls-key)")
	key = fs.String(prefix+".tls-key", "", "PEM key of -"+prefix+".tls-cert")
	return ca, cert, key
}

// KafkaAuthFlags defines the flags of TLS and SASL to the Kafka brokers
// (-kafka.tls, -kafka.tls-…, -kafka.sasl…), the same in every command; the
// function it returns reads them after parsing.
func KafkaAuthFlags(fs FlagSet) func() KafkaAuthConfig {
	useTLS := fs.Bool("kafka.tls", false, "reach Kafka over TLS (also on with any -kafka.tls-… file)")
	ca, cert, key := TLSFlags(fs, "kafka", "Kafka")
	mech := fs.String("kafka.sasl", "", "SASL mechanism: plain (only with TLS), scram-sha-256 or scram-sha-512")
	user := fs.String("kafka.sasl-user", "", "SASL user name")
	pw := fs.String("kafka.sasl-password-file", "", "file holding the SASL password (one line)")
	return func() KafkaAuthConfig {
		return KafkaAuthConfig{TLS: *useTLS, CAFile: *ca, CertFile: *cert, KeyFile: *key,
			SASL: *mech, User: *user, PasswordFile: *pw}
	}
}

// SASL mechanisms by the names flags take.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Build reads the files and checks that the settings go together. Errors
// name the setting (as the KafkaAuthConfig field's flag would) and never
// quote a secret.
func (c KafkaAuthConfig) Build() (KafkaAuth, error) {
	var a KafkaAuth
	var err error
	if a.TLS, err = NewTLSClient("kafka", "kafka", c.TLS, c.CAFile, c.CertFile, c.KeyFile); err != nil {
		return a, err
	}
	if c.SASL == "" {
		if c.User != "" || c.PasswordFile != "" {
			return a, errors.New("kafka SASL user and password file given without a SASL mechanism")
		}
		return a, nil
	}
	if c.User == "" || c.PasswordFile == "" {
		return a, fmt.Errorf("kafka SASL %s needs a user and a password file", c.SASL)
	}
	password, err := ReadSecret("kafka SASL password file", c.PasswordFile)
	if err != nil {
		return a, err
	}
	switch strings.ToLower(c.SASL) {
	case SASLPlain:
		if a.TLS == nil {
			// PLAIN sends the password as it is: only inside TLS.
			return a, errors.New("kafka SASL plain without TLS would send the password in clear; turn TLS on")
		}
		a.SASL = plain.Mechanism{Username: c.User, Password: password}
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if strings.EqualFold(c.SASL, SASLScramSHA512) {
			algo = scram.SHA512
		}
		if a.SASL, err = scram.Mechanism(algo, c.User, password); err != nil {
			return a, fmt.Errorf("kafka SASL %s: %w", c.SASL, err)
		}
	default:
		return a, fmt.Errorf("kafka SASL mechanism %q: want %s, %s or %s", c.SASL, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	return a, nil
}

// ReadSecret reads a password or token from a file of one line (a trailing
// newline, an editor's or echo's, is not part of it); what names the file
// in errors, which never quote its content.
func ReadSecret(what, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	password := strings.TrimRight(string(b), "\r\n")
	if password == "" || strings.ContainsAny(password, "\r\n") {
		return "", fmt.Errorf("%s %s: want the secret alone on one line", what, file)
	}
	return password, nil
}

// Transport returns a transport that reaches the brokers as a says, naming
// the client clientID. TLS is made by a's dial function, with the CAs on
// disk when each connection is made.
func (a KafkaAuth) Transport(clientID string) *kafka.Transport {
	t := &kafka.Transport{ClientID: clientID, SASL: a.SASL}
	if a.TLS != nil {
		t.Dial = a.TLS.Dial
	}
	return t
}

// Dialer returns a dialer (for a kafka.Reader) that reaches the brokers as a
// says.
func (a KafkaAuth) Dialer() *kafka.Dialer {
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, SASLMechanism: a.SASL}
	if a.TLS != nil {
		d.DialFunc = a.TLS.Dial
	}
	return d
}

// Client returns a client of brokers that reaches them as a says. Without
// TLS or SASL it shares kafka-go's default transport, as writers made
// without a transport of their own do: a topic created through it is then
// in their cached metadata at once (a writer whose cache predates the topic
// is told it does not exist).
func (a KafkaAuth) Client(brokers []string, timeout time.Duration) *kafka.Client {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout}
	if a.TLS != nil || a.SASL != nil {
		c.Transport = a.Transport("planflag")
	}
	return c
}

// ErrKafkaAuth marks a failure that retrying will not mend: the brokers
// refused planflag's credentials, certificate or permissions, or planflag
// refused the brokers' certificate. Prepare returns it at once rather than
// retry for ever; flagd stops with it.
var ErrKafkaAuth = errors.New("kafka refused the credentials, certificate or permissions given, or its certificate was refused")

// markAuth wraps err in ErrKafkaAuth if it is an authentication or
// authorisation failure not marked so already.
func markAuth(err error) error {
	if err == nil || errors.Is(err, ErrKafkaAuth) || !isAuthError(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrKafkaAuth, err)
}

// isAuthError reports whether err is an authentication or authorisation
// failure between planflag and a broker.
func isAuthError(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState,
			kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed:
			return true
		}
	}
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	if errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &host) {
		return true
	}
	// A TLS alert from the broker (no or a bad client certificate, no
	// protocol or cipher in common) comes as a "remote error".
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// RedisAuthConfig is how flagd reaches Redis, as an operator gives it.
type RedisAuthConfig struct {
	TLS      bool   // TLS, verifying the server against the system's roots or CAFile
	CAFile   string // PEM CA certificates (implies TLS)
	CertFile string // PEM client certificate and key, for a server that asks (implies TLS)
	KeyFile  string
	// User is an ACL user; PasswordFile holds its password (or, without a
	// user, the password of Redis's default user: requirepass).
	User         string
	PasswordFile string
}

// RedisAuth is how flagd's Redis clients reach the server.
type RedisAuth struct {
	TLS            *TLSClient // nil: plaintext
	User, Password string
}

// Build reads the files and checks that the settings go together.
func (c RedisAuthConfig) Build() (RedisAuth, error) {
	var a RedisAuth
	var err error
	if a.TLS, err = NewTLSClient("redis", "redis", c.TLS, c.CAFile, c.CertFile, c.KeyFile); err != nil {
		return a, err
	}
	if c.User != "" && c.PasswordFile == "" {
		return a, errors.New("redis user given without a password file")
	}
	if c.PasswordFile != "" {
		if a.Password, err = ReadSecret("redis password file", c.PasswordFile); err != nil {
			return a, err
		}
		a.User = c.User
	}
	return a, nil
}

// Options returns the options of a client of the Redis at addr, reached as
// a says, with timeouts that keep a Redis gone away from holding anything
// up for long.
func (a RedisAuth) Options(addr string) *redis.Options {
	o := &redis.Options{Addr: addr, Username: a.User, Password: a.Password, DialTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, DisableIdentity: true}
	if a.TLS != nil {
		// go-redis makes TLS connections with TLSConfig only in its own
		// dialer; this one makes each with the CAs then on disk. TLSConfig
		// still tells go-redis that the connections are TLS.
		host, _, _ := net.SplitHostPort(addr)
		o.TLSConfig = a.TLS.Config(host)
		o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
			defer cancel()
			return a.TLS.Dial(ctx, network, addr)
		}
	}
	return o
}
