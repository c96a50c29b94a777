package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

const lookupBody = `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07"}`

// heldMatcher answers from ix once release is closed, so a test can hold a
// lookup in flight across shutdown.
type heldMatcher struct {
	ix               *matcher.Index
	entered, release chan struct{}
}

func (h heldMatcher) Match(q matcher.Query) (matcher.Result, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.ix.Match(q)
}

// A lookup still in flight when the shutdown drain gives up finishes after
// Close has closed the auditor: it is answered, and its audit event is
// counted lost rather than panicking the process (send on closed channel).
func TestServiceLookupOutlivesDrain(t *testing.T) {
	m := boot(t, eventsFile(t), "-audit.file", filepath.Join(t.TempDir(), "audit.jsonl"), "-shutdown.timeout", "100ms")
	waitReady(t, m)
	h := heldMatcher{m.ix, make(chan struct{}, 1), make(chan struct{})}
	m.api.SetMatcher(h)
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+m.Addr+"/v1/lookup", strings.NewReader(lookupBody))
		req.Header.Set("Authorization", "Bearer "+tokenCAD)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-h.entered
	if err := m.Close(); err == nil {
		t.Error("Close reported no error with a lookup still in flight past -shutdown.timeout")
	}
	close(h.release)
	if status := <-answered; status != 200 {
		t.Errorf("lookup in flight across shutdown answered %d", status)
	}
	if lost := m.auditor.Lost(); lost != 1 {
		t.Errorf("%v audit events counted lost, want the late lookup's 1", lost)
	}
}

// A plan load finishing while Close drains must not turn the service ready
// again: a lookup arriving then is refused 503 not_ready, not answered.
func TestServiceNotReadyAfterShutdownBegan(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, fifo)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A lookup whose body is still arriving holds the drain open.
	conn := holdDrain(t, m.Addr)
	defer conn.Close()
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	// Close has begun once the listener is closed.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", m.Addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open 5 s after Close began")
		}
	}
	w.WriteString(events)
	w.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l := logs.String()
		if strings.Contains(l, `"msg":"ready"`) || strings.Contains(l, "loaded after shutdown began") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load neither finished nor gave up:\n%s", l)
		}
	}
	io.WriteString(conn, lookupBody[10:])
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(raw), `"code":"not_ready"`) {
		t.Errorf("lookup during shutdown, after the load finished: %d %s", resp.StatusCode, raw)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// closeWithin runs Close and fails the test if it has not returned within
// d.
func closeWithin(t *testing.T, m *Main, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Close still waiting %v after shutdown began (-shutdown.timeout %v)", d, m.Config.ShutdownTimeout)
		return nil
	}
}

// Close straight after Run (a signal as flagd starts) returns: the HTTP
// server may not have taken up its listener yet, and used to start serving
// after shutdown and keep Close waiting for ever.
func TestServiceCloseRightAfterRun(t *testing.T) {
	events := eventsFile(t)
	for range 20 {
		m := boot(t, events)
		if err := closeWithin(t, m, 5*time.Second); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// SIGTERM while the plan events are still arriving (a slow file, a pipe):
// the load is stopped and Close returns, rather than waiting for the load
// however long it takes.
func TestServiceCloseDuringFileLoad(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, fifo, "-shutdown.timeout", "2s")
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString(events[:40]) // part of the first line, then nothing
	if err := closeWithin(t, m, 10*time.Second); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"plan source load stopped: shutting down"`) {
		t.Errorf("load not stopped:\n%s", logs.String())
	}
}

// A source that cannot be stopped (opening a pipe no one writes to blocks
// in the kernel) is abandoned once -shutdown.timeout has passed.
func TestServiceCloseAbandonsStuckLoad(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	m := boot(t, fifo, "-shutdown.timeout", "200ms")
	defer func() {
		// Let the abandoned open return, so the load goroutine ends.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}()
	err := closeWithin(t, m, 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "abandoned") {
		t.Errorf("Close: %v, want the load reported abandoned", err)
	}
}

// The first SIGTERM starts a graceful shutdown; a second one, while the
// drain still waits, ends the process the default way at once instead of
// being swallowed.
func TestFlagdSecondSignalKills(t *testing.T) {
	dir := t.TempDir()
	p := startFlagd(t, "-clients", clientsFile(t, dir), "-events", eventsFile(t), "-shutdown.timeout", "1m", "-audit.none")
	p.waitReady(t, 10*time.Second)
	// A lookup whose body is still arriving holds the drain open.
	conn := holdDrain(t, p.addr)
	defer conn.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !p.logged("signal received; shutting down"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("first SIGTERM not handled")
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("flagd still running 10 s after a second SIGTERM (drain timeout 1m)")
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("flagd ended %v, want killed by the second SIGTERM", p.cmd.ProcessState)
	}
}

// holdDrain opens a connection to the API at addr with a lookup on it whose
// body is still arriving, which a graceful shutdown must wait for. A whole
// lookup is answered on the connection first, so the server has accepted
// it (a connection still in the listen queue when shutdown closes the
// listener is dropped, not drained).
func holdDrain(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	head := "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokenCAD +
		"\r\nContent-Length: " + strconv.Itoa(len(lookupBody)) + "\r\n\r\n"
	io.WriteString(conn, head+lookupBody)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		t.Fatalf("first lookup on the held connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The partial lookup asks to continue: the server's "100 Continue"
	// shows it has read the headers and holds the connection as active
	// (an idle one, not yet read, shutdown would close rather than drain).
	io.WriteString(conn, strings.Replace(head, "\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n", 1))
	const cont = "HTTP/1.1 100 Continue\r\n\r\n"
	got := make([]byte, len(cont))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != cont {
		conn.Close()
		t.Fatalf("partial lookup: %q, %v; want %q", got, err, cont)
	}
	conn.SetReadDeadline(time.Time{})
	io.WriteString(conn, lookupBody[:10])
	return conn
}

// SIGHUP reads the clients file again and nothing else: the process goes
// on serving, with the new clients.
func TestFlagdSIGHUPReadsClients(t *testing.T) {
	dir := t.TempDir()
	clients := clientsFile(t, dir)
	p := startFlagd(t, "-clients", clients, "-events", eventsFile(t), "-audit.none")
	p.waitReady(t, 10*time.Second)
	status := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/v1/lookup", strings.NewReader(lookupBody))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(tokenCAD); s != 200 {
		t.Fatalf("before: %d", s)
	}
	b, _ := json.Marshal([]alert.ClientConfig{{ID: "las-cad", TokenSHA256: alert.TokenHash("token-cad-2"), Scopes: []string{"lookup"}}})
	if err := os.WriteFile(clients, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	feedtest.Eventually(t, 10*time.Second, "clients read again", func() bool { return p.logged("clients file read again") })
	if s := status(tokenCAD); s != 401 {
		t.Errorf("revoked token: %d, want 401", s)
	}
	if s := status("token-cad-2"); s != 200 {
		t.Errorf("new token: %d, want 200", s)
	}
	select {
	case <-p.done:
		t.Fatal("flagd ended on SIGHUP")
	default:
	}
}
