package careplanclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Client talks to the care-plan platform's API over net/http: plan status,
// and the list of live plans for reconciliation. Every call has a timeout;
// calls are GETs (idempotent) and are retried with jittered backoff; a
// circuit breaker stops calling a platform that keeps failing, so callers
// fail fast instead of piling up. Lookups never call the platform (links
// are signed locally), so its state never slows an answer.
type Client struct {
	Base    string        // e.g. https://careplans.example.nhs.uk
	Timeout time.Duration // per attempt (default 2s)
	Retries int           // extra attempts after the first (default 2)
	HTTP    *http.Client  // default: one with no overall timeout (attempts have their own)
	Breaker *Breaker      // default: 5 failures open it for 10s
	// Token, if set, is sent as a bearer token: the platform's credential
	// for this service.
	Token string

	defaultOnce sync.Once
	defaultBr   *Breaker // the default breaker, made at the first call
}

// PlanStatus is the platform's view of one plan.
type PlanStatus struct {
	PlanID  string `json:"plan_id"`
	Live    bool   `json:"live"`
	Version uint64 `json:"version"`
}

// ErrNotFound: the platform does not know the plan.
var ErrNotFound = errors.New("plan not found on the platform")

// ErrOpen: the breaker is open; the call was not made.
var ErrOpen = errors.New("care-plan platform circuit open: not calling it for now")

// StatusError is an unexpected HTTP status from the platform.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("care-plan platform answered %d", e.Code) }

// Status fetches one plan's status.
func (c *Client) Status(ctx context.Context, planID string) (PlanStatus, error) {
	var st PlanStatus
	err := c.get(ctx, "/api/plans/"+url.PathEscape(planID), &st)
	return st, err
}

// LivePlans fetches every live plan's ID and version.
func (c *Client) LivePlans(ctx context.Context) (map[string]uint64, error) {
	var list []PlanStatus
	if err := c.get(ctx, "/api/plans?live=true", &list); err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(list))
	for _, p := range list {
		out[p.PlanID] = p.Version
	}
	return out, nil
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	timeout, retries := c.Timeout, c.Retries
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if retries < 0 {
		retries = 0
	} else if retries == 0 {
		retries = 2
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	br := c.Breaker
	if br == nil {
		// Made once, not assigned to c.Breaker: calls may run concurrently.
		c.defaultOnce.Do(func() { c.defaultBr = defaultBreaker() })
		br = c.defaultBr
	}
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			// Full jitter: a random wait up to 100ms·2^attempt, so
			// replicas retrying together do not hammer the platform in step.
			d := time.Duration(rand.Int64N(int64(100*time.Millisecond) << attempt))
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(d):
			}
		}
		if !br.Allow() {
			return ErrOpen
		}
		var retry bool
		retry, err = c.attempt(ctx, hc, timeout, path, into)
		br.Done(err == nil || !retry)
		if err == nil || !retry {
			return err
		}
	}
	return err
}

// attempt makes one call; retry says whether a failure is worth another.
func (c *Client) attempt(ctx context.Context, hc *http.Client, timeout time.Duration, path string, into any) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return true, err // timeouts, refused and dropped connections
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, ErrNotFound
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return true, &StatusError{resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return false, &StatusError{resp.StatusCode}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(into); err != nil {
		return true, fmt.Errorf("care-plan platform answer unreadable: %w", err)
	}
	return false, nil
}

// Breaker is a circuit breaker: after Threshold consecutive failures it
// opens for Cooldown, then lets one trial call through (half-open); the
// trial's success closes it, its failure opens it again.
type Breaker struct {
	Threshold int
	Cooldown  time.Duration
	Now       func() time.Time

	mu       sync.Mutex
	failures int
	openedAt time.Time
	open     bool
	trial    bool // a half-open trial call is in flight
}

func defaultBreaker() *Breaker { return &Breaker{Threshold: 5, Cooldown: 10 * time.Second} }

func (b *Breaker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Allow says whether a call may be made now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.trial || b.now().Sub(b.openedAt) < b.Cooldown {
		return false
	}
	b.trial = true
	return true
}

// Done reports a call's outcome.
func (b *Breaker) Done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trial = false
	if ok {
		b.failures, b.open = 0, false
		return
	}
	b.failures++
	if b.open || b.failures >= max(1, b.Threshold) {
		b.open, b.openedAt = true, b.now()
	}
}

// State is "closed", "open" or "half-open".
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return "closed"
	case b.trial || b.now().Sub(b.openedAt) >= b.Cooldown:
		return "half-open"
	}
	return "open"
}
