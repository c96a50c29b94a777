package feed_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// kafkaUser adds a SCRAM-SHA-512 user with a fresh password to the test
// broker (scripts/services.sh makes the plaintext listener's principal a
// super user), returning its name and a file holding the password.
func kafkaUser(t *testing.T, ctx context.Context, admin *kafka.Client) (user, passwordFile string) {
	t.Helper()
	user, pw := feedtest.Name("acl-user"), feedtest.Name("pw")
	salt := make([]byte, 16)
	rand.Read(salt)
	const iterations = 4096
	salted, err := pbkdf2.Key(sha512.New, pw, salt, iterations, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
		Upsertions: []kafka.UserScramCredentialsUpsertion{{Name: user, Mechanism: kafka.ScramMechanismSha512,
			Iterations: iterations, Salt: salt, SaltedPassword: salted}}})
	if err != nil {
		t.Fatalf("adding a SCRAM user: %v", err)
	}
	for _, r := range res.Results {
		if r.Error != nil {
			t.Fatalf("adding a SCRAM user: %v", r.Error)
		}
	}
	t.Cleanup(func() { // the broker keeps users in its metadata for good
		admin.AlterUserScramCredentials(context.Background(), &kafka.AlterUserScramCredentialsRequest{
			Deletions: []kafka.UserScramCredentialsDeletion{{Name: user, Mechanism: kafka.ScramMechanismSha512}}})
	})
	passwordFile = filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(passwordFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return user, passwordFile
}

// TestCreateTopicWithoutCreatePermission: against brokers with ACLs, a
// client allowed to describe, read and write its topics but not to create
// any uses a topic an operator made (brokers check the permission to
// create before whether the topic exists, so asking to create it would be
// refused), and is told plainly, as an ErrKafkaAuth, when one is missing.
func TestCreateTopicWithoutCreatePermission(t *testing.T) {
	s := feedtest.SecureKafka(t)
	brokers := feedtest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	user, passwordFile := kafkaUser(t, ctx, admin)
	prefix := feedtest.Name("acl")
	principal := "User:" + user
	acl := func(rt kafka.ResourceType, name string, pt kafka.PatternType, who string, op kafka.ACLOperationType, perm kafka.ACLPermissionType) kafka.ACLEntry {
		return kafka.ACLEntry{ResourceType: rt, ResourceName: name, ResourcePatternType: pt, Principal: who, Host: "*",
			Operation: op, PermissionType: perm}
	}
	// An ACL on a resource ends the broker's allow-everyone default for
	// it: the cluster stays open to everyone else by a wildcard allow.
	acls := []kafka.ACLEntry{
		acl(kafka.ResourceTypeCluster, "kafka-cluster", kafka.PatternTypeLiteral, "User:*", kafka.ACLOperationTypeAll, kafka.ACLPermissionTypeAllow),
		acl(kafka.ResourceTypeCluster, "kafka-cluster", kafka.PatternTypeLiteral, principal, kafka.ACLOperationTypeCreate, kafka.ACLPermissionTypeDeny),
		acl(kafka.ResourceTypeTopic, prefix, kafka.PatternTypePrefixed, principal, kafka.ACLOperationTypeAll, kafka.ACLPermissionTypeAllow),
		acl(kafka.ResourceTypeTopic, prefix, kafka.PatternTypePrefixed, principal, kafka.ACLOperationTypeCreate, kafka.ACLPermissionTypeDeny),
	}
	res, err := admin.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: acls})
	if err != nil {
		t.Fatalf("creating ACLs: %v", err)
	}
	for _, err := range res.Errors {
		if err != nil {
			t.Fatalf("creating ACLs: %v (does scripts/services.sh configure an authorizer?)", err)
		}
	}
	t.Cleanup(func() { // the wildcard allow stays: it changes nothing
		var filters []kafka.DeleteACLsFilter
		for _, a := range acls[1:] {
			filters = append(filters, kafka.DeleteACLsFilter{ResourceTypeFilter: a.ResourceType, ResourceNameFilter: a.ResourceName,
				ResourcePatternTypeFilter: a.ResourcePatternType, PrincipalFilter: a.Principal, HostFilter: a.Host,
				Operation: a.Operation, PermissionType: a.PermissionType})
		}
		admin.DeleteACLs(context.Background(), &kafka.DeleteACLsRequest{Filters: filters})
	})

	made := prefix + "-made"
	if err := feed.CreateTopic(ctx, brokers, feed.KafkaAuth{}, made, 1, true); err != nil {
		t.Fatalf("the operator making the topic: %v", err)
	}
	ka, err := feed.KafkaAuthConfig{CAFile: s.CAFile, SASL: feed.SASLScramSHA512, User: user, PasswordFile: passwordFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	// ACLs reach the broker through the metadata log, a moment after they
	// are made: wait until it lists them (a create allowed before then
	// would make the topic this test needs missing).
	feedtest.Eventually(t, 30*time.Second, "the broker has the ACLs", func() bool {
		r, err := admin.DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
			ResourceTypeFilter: kafka.ResourceTypeAny, ResourcePatternTypeFilter: kafka.PatternTypeAny,
			PrincipalFilter: principal, Operation: kafka.ACLOperationTypeAny, PermissionType: kafka.ACLPermissionTypeAny}})
		if err != nil || r.Error != nil {
			return false
		}
		n := 0
		for _, res := range r.Resources {
			n += len(res.ACLs)
		}
		return n == len(acls)-1
	})
	refused := feed.CreateTopic(ctx, s.SASLBrokers, ka, prefix+"-missing", 1, true)
	if !errors.Is(refused, feed.ErrKafkaAuth) || !errors.Is(refused, kafka.TopicAuthorizationFailed) && !errors.Is(refused, kafka.ClusterAuthorizationFailed) {
		t.Errorf("a topic the client may not create: %v; want an ErrKafkaAuth naming the refusal", refused)
	}
	if err := feed.CreateTopic(ctx, s.SASLBrokers, ka, made, 1, true); err != nil {
		t.Fatalf("a topic the operator made, with no permission to create: %v; want it used", err)
	}
	// And the client may use it: it writes and reads back.
	w := &kafka.Writer{Addr: kafka.TCP(s.SASLBrokers...), Transport: ka.Transport("acl-test"), Topic: made, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("writing to the operator's topic: %v", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.SASLBrokers, Topic: made, Partition: 0, Dialer: ka.Dialer()})
	defer r.Close()
	if m, err := r.ReadMessage(ctx); err != nil || string(m.Value) != "v" {
		t.Fatalf("reading the operator's topic back: %q, %v", m.Value, err)
	}
}
