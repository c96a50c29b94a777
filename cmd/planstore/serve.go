package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// ClientHeader names the client opening a link. The real platform knows
// its user from its own sign-in; the stand-in takes it from this header.
const ClientHeader = "X-Planflag-Client"

// store is the stand-in's plan store: each plan's version and whether it
// is live. It applies events with the contract's version rule.
type store struct {
	mu    sync.RWMutex
	plans map[string]planState
}

type planState struct {
	version uint64
	live    bool
}

func (s *store) Apply(changes []matcher.Change) matcher.ApplyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st matcher.ApplyStats
	for _, c := range changes {
		if cur, ok := s.plans[c.PlanID]; ok && c.Version <= cur.version {
			st.Stale++
			continue
		}
		s.plans[c.PlanID] = planState{c.Version, c.Patient != nil}
		if c.Patient != nil {
			st.Upserted++
		} else {
			st.Withdrawn++
		}
	}
	return st
}

// platform serves the care-plan platform's side: links open here, and the
// API that careplanclient reads.
type platform struct {
	store  *store
	keys   *careplanclient.Keys
	single *careplanclient.SingleUse // nil: links may be opened again
	now    func() time.Time
}

func (p *platform) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /open", p.open)
	mux.HandleFunc("GET /api/plans/{id}", p.status)
	mux.HandleFunc("GET /api/plans", p.list)
	return mux
}

func refuse(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"reason": reason}})
}

// open shows the plan a valid link points to, or refuses it with 403 and
// the reason: tampered, expired, issued to another client, already used.
func (p *platform) open(w http.ResponseWriter, r *http.Request) {
	client := r.Header.Get(ClientHeader)
	if client == "" {
		refuse(w, http.StatusUnauthorized, "no client: the platform opens links only for a signed-in client ("+ClientHeader+")")
		return
	}
	now := p.now()
	c, err := p.keys.Verify(r.URL.Query().Get("t"), client, now)
	if err == nil && p.single != nil {
		err = p.single.Redeem(r.Context(), c, now)
		if err != nil && !errors.Is(err, careplanclient.ErrReused) {
			// Redis away: the link is refused (it must not open twice), but
			// the link is not at fault and the reason is not the caller's.
			refuse(w, http.StatusServiceUnavailable, "the single-use check is unavailable: try the link again shortly")
			return
		}
	}
	if err != nil {
		refuse(w, http.StatusForbidden, err.Error())
		return
	}
	p.store.mu.RLock()
	st, ok := p.store.plans[c.PlanID]
	p.store.mu.RUnlock()
	if !ok || !st.live {
		refuse(w, http.StatusNotFound, "plan withdrawn or unknown")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "<!doctype html><title>Urgent care plan</title><h1>Urgent care plan %s</h1>"+
		"<p>Version %d, opened by %s; this link expires at %s.</p><p>(planstore stand-in: the real platform shows the plan here.)</p>\n",
		html.EscapeString(c.PlanID), st.version, html.EscapeString(client), c.Expires.UTC().Format(time.RFC3339))
}

func (p *platform) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p.store.mu.RLock()
	st, ok := p.store.plans[id]
	p.store.mu.RUnlock()
	if !ok {
		refuse(w, http.StatusNotFound, "unknown plan")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(careplanclient.PlanStatus{PlanID: id, Live: st.live, Version: st.version})
}

func (p *platform) list(w http.ResponseWriter, r *http.Request) {
	liveOnly := r.URL.Query().Get("live") == "true"
	p.store.mu.RLock()
	out := make([]careplanclient.PlanStatus, 0, len(p.store.plans))
	for id, st := range p.store.plans {
		if st.live || !liveOnly {
			out = append(out, careplanclient.PlanStatus{PlanID: id, Live: st.live, Version: st.version})
		}
	}
	p.store.mu.RUnlock()
	slices.SortFunc(out, func(a, b careplanclient.PlanStatus) int { return strings.Compare(a.PlanID, b.PlanID) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// runServe serves the platform side until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to serve on")
	events := fs.String("events", "", "plan events (JSON lines) the platform holds")
	keyFile := fs.String("link.key-file", "", "link keys (the same file flagd signs with)")
	redisAddr := fs.String("redis", "", "Redis address: make links single-use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events == "" || *keyFile == "" {
		return errors.New("give -events FILE.jsonl and -link.key-file FILE")
	}
	keys, err := careplanclient.LoadKeys(*keyFile)
	if err != nil {
		return err
	}
	s := &store{plans: map[string]planState{}}
	if _, err := feed.LoadFile(*events, s, nil); err != nil {
		return err
	}
	p := &platform{store: s, keys: keys, now: time.Now}
	if *redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer rdb.Close()
		p.single = &careplanclient.SingleUse{RDB: rdb}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p.routes(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "planstore platform: %d plans; serving on http://%s\n", len(s.plans), ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
