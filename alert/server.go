package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"github.com/valyala/fastjson"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/matcher"
)

// Matcher is what the lookup API asks: the matcher's index.
type Matcher interface {
	Match(matcher.Query) (matcher.Result, error)
}

// Config sets the API's limits.
type Config struct {
	MaxBody     int // request body limit in bytes (413 past it)
	MaxInFlight int // lookups answered at once before 503s
}

// DefaultConfig suits one machine: a lookup body is a few hundred bytes.
func DefaultConfig() Config { return Config{MaxBody: 16 << 10, MaxInFlight: 256} }

// Server is the call-handler-facing HTTP API.
type Server struct {
	cfg     Config
	ix      atomic.Pointer[matcherBox]
	clients *Clients
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time

	ready    atomic.Bool
	inFlight atomic.Int64
	idPrefix string
	idSeq    atomic.Uint64
	metricsH fasthttp.RequestHandler
	// counters caches each client's planflag_lookups_total children by
	// tier, by client ID (a clients file read again makes new *Clients):
	// resolving labels costs a hash and a locked map lookup a request. A
	// map never changed once stored, replaced whole (under countersMu)
	// when a client is first seen: read without a lock or an allocation.
	counters   atomic.Pointer[map[string]*tierCounters]
	countersMu sync.Mutex

	linker  atomic.Pointer[careplanclient.Linker] // nil: answers carry no links
	auditor *Auditor                              // nil: no audit trail
	pusher  *Pusher                               // nil: no push alerts
}

// SetPusher records which plans each client is given, for push alerts.
// Call before serving.
func (s *Server) SetPusher(p *Pusher) { s.pusher = p }

// SetLinker makes every candidate carry a signed plan link. It may be
// called while serving (link keys read again: the next answer signs with
// the new keys).
func (s *Server) SetLinker(l *careplanclient.Linker) { s.linker.Store(l) }

// SetAuditor records every lookup from a known client: those answered and
// those refused. Call before serving.
func (s *Server) SetAuditor(a *Auditor) { s.auditor = a }

type matcherBox struct{ m Matcher }

type tierCounters [3]prometheus.Counter // by matcher.Tier

// lookupCounter is the client's lookup counter for tier.
func (s *Server) lookupCounter(c *Client, tier matcher.Tier) prometheus.Counter {
	if m := s.counters.Load(); m != nil {
		if tc, ok := (*m)[c.ID]; ok {
			return tc[tier]
		}
	}
	s.countersMu.Lock()
	defer s.countersMu.Unlock()
	next := map[string]*tierCounters{}
	if m := s.counters.Load(); m != nil {
		if tc, ok := (*m)[c.ID]; ok {
			return tc[tier]
		}
		maps.Copy(next, *m)
	}
	var tc tierCounters
	for t := range tc {
		tc[t] = s.metrics.Lookups.WithLabelValues(matcher.Tier(t).String(), c.ID)
	}
	next[c.ID] = &tc
	s.counters.Store(&next)
	return tc[tier]
}

// bodyPool holds answer buffers.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// NewServer returns a server that answers 503 until SetReady(true).
func NewServer(cfg Config, clients *Clients, m *Metrics, log *slog.Logger, now func() time.Time) *Server {
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &Server{cfg: cfg, clients: clients, metrics: m, log: log, now: now, idPrefix: hex.EncodeToString(b[:]) + "-"}
	s.metricsH = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	return s
}

// SetMatcher sets the index lookups are answered from.
func (s *Server) SetMatcher(m Matcher) { s.ix.Store(&matcherBox{m}) }

// SetReady turns /readyz and lookups on or off.
func (s *Server) SetReady(ready bool) {
	s.ready.Store(ready)
	if ready {
		s.metrics.Ready.Set(1)
	} else {
		s.metrics.Ready.Set(0)
	}
}

// HTTPServer returns the fasthttp server that serves h the way flagd serves
// the API: the body limit, read, write and idle timeouts, no Date header,
// and once shutdown begins each answer closes its connection.
// The load benchmark serves both the API and its bare ceiling with it, so
// they are measured as flagd runs. errs may be nil (fasthttp's plain
// answers); log may be nil (fasthttp's default logger).
//
// fasthttp's error for a request it cannot parse quotes the bytes it read
// (the bearer token, a patient's details in the body), and it hands that
// error to log. SecureErrorLogMessage keeps some of the quotes out, not
// all: with it on, errors of requests carrying a patient's details were
// still seen to quote them (cmd/flagd/pii_test.go). What keeps them out of
// flagd's log and answers is that neither ErrorHandler nor flagd's logger
// (Server.ConnLogger) passes on any of the error's text: keep it so.
func HTTPServer(h fasthttp.RequestHandler, errs func(*fasthttp.RequestCtx, error), maxBody int, log fasthttp.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               h,
		ErrorHandler:          errs,
		Name:                  "planflag",
		MaxRequestBodySize:    maxBody,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
		NoDefaultDate:         true,
		SecureErrorLogMessage: true,
		CloseOnShutdown:       true, // a keep-alive client reconnects to another replica
		Logger:                log,
	}
}

// ConnLogger is the fasthttp.Logger for the API's server. fasthttp logs
// through it why it could not serve a connection, and that message can
// quote the request (the bearer token, a patient's details), so none of
// its text is logged: a fixed message and the kind of error, one of a few
// fixed words (connErrorKind), counted in planflag_http_conn_errors_total.
func (s *Server) ConnLogger() fasthttp.Logger { return connLogger{s} }

type connLogger struct{ s *Server }

func (l connLogger) Printf(_ string, args ...any) {
	kind := "other" // no error: a connection limit reached
	for _, a := range args {
		if err, ok := a.(error); ok {
			kind = connErrorKind(err)
		}
	}
	l.s.metrics.ConnErrors.WithLabelValues(kind).Inc()
	l.s.log.Debug("http connection not served", "kind", kind)
}

// connErrorKind names the kind of a fasthttp read error with a fixed word,
// never its text.
func connErrorKind(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body_too_large"
	case errors.As(err, &small):
		return "headers_too_large"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "malformed"
	}
}

// Handler routes requests.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/v1/lookup":
		s.lookup(ctx)
	case "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"alive"}`)
	case "/readyz":
		ctx.SetContentType("application/json")
		if s.ready.Load() {
			ctx.SetBodyString(`{"status":"ready"}`)
		} else {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"status":"not ready"}`)
		}
	case "/metrics":
		s.metricsH(ctx)
	default:
		s.fail(ctx, Errorf(404, "not_found", "no such endpoint"), "")
	}
}

// ErrorHandler answers requests fasthttp could not read in the API's error
// shape: 413 for a body over the limit, 431 for headers larger than the
// server reads, 408 for a request not received within the read timeout, 400
// for anything malformed. The answer never quotes the request.
func (s *Server) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	switch connErrorKind(err) {
	case "body_too_large":
		s.fail(ctx, Errorf(413, "body_too_large", "request body larger than %d bytes", s.cfg.MaxBody), "")
	case "headers_too_large":
		s.fail(ctx, Errorf(431, "headers_too_large", "request headers too large"), "")
	case "timeout":
		s.fail(ctx, Errorf(408, "request_timeout", "request not received in time"), "")
	default:
		s.fail(ctx, Errorf(400, "bad_request", "malformed HTTP request"), "")
	}
}

func (s *Server) requestID() string {
	return s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 36)
}

func (s *Server) lookup(ctx *fasthttp.RequestCtx) {
	start := s.now()
	id := s.requestID()
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		s.refuse(ctx, Errorf(405, "method_not_allowed", "use POST"), id, s.authenticate(ctx), start)
		return
	}
	client := s.authenticate(ctx)
	if client == nil {
		// No client to attribute it to, so not audited (a flood of
		// unknown tokens must not crowd real lookups out of the audit
		// queue); counted in planflag_http_errors_total.
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="planflag"`)
		s.fail(ctx, Errorf(401, "unauthorized", "missing or unknown bearer token"), id)
		return
	}
	if !client.Has(ScopeLookup) {
		s.refuse(ctx, Errorf(403, "forbidden", "client %s lacks the lookup scope", client.ID), id, client, start)
		return
	}
	// Refusals that control load (429, 503) are counted, not audited: a
	// client far over its rate, or a flood while shedding, must not fill
	// the audit queue and crowd out the events of lookups answered.
	if ok, retry := client.limiter.allow(); !ok {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retry))
		s.fail(ctx, Errorf(429, "rate_limited", "client %s is over its rate of %g lookups a second", client.ID, client.ratePerS), id)
		return
	}
	// A lookup shed with 503 was never answered: its token goes back, so
	// a client that retries as Retry-After says is not then refused 429.
	if !s.ready.Load() {
		client.limiter.refund()
		ctx.Response.Header.Set("Retry-After", "1")
		s.fail(ctx, Errorf(503, "not_ready", "the index is still loading"), id)
		return
	}
	if n := s.inFlight.Add(1); n > int64(s.cfg.MaxInFlight) {
		s.inFlight.Add(-1)
		client.limiter.refund()
		ctx.Response.Header.Set("Retry-After", "1")
		s.fail(ctx, Errorf(503, "overloaded", "too many lookups in flight; retry shortly"), id)
		return
	}
	s.metrics.InFlight.Inc()
	defer func() {
		s.inFlight.Add(-1)
		s.metrics.InFlight.Dec()
	}()
	body := ctx.PostBody()
	if len(body) > s.cfg.MaxBody {
		// A backstop: flagd's server (HTTPServer) refuses such a body
		// before the handler, with no client known, in ErrorHandler.
		s.refuse(ctx, Errorf(413, "body_too_large", "request body larger than %d bytes", s.cfg.MaxBody), id, client, start)
		return
	}
	q, aerr := DecodeRequest(body, false)
	if aerr != nil {
		s.refuse(ctx, aerr, id, client, start)
		return
	}
	res, err := s.ix.Load().m.Match(q)
	if err != nil {
		s.refuse(ctx, FromMatchError(err), id, client, start)
		return
	}
	var links []careplanclient.Link
	if linker := s.linker.Load(); linker != nil && len(res.Candidates) > 0 {
		links = make([]careplanclient.Link, len(res.Candidates))
		for i := range res.Candidates {
			links[i] = linker.Make(res.Candidates[i].PlanID, client.ID, start)
		}
	}
	if s.auditor != nil || s.pusher != nil && len(res.Candidates) > 0 {
		ev := auditEvent(id, client.ID, start, &q, &res, links)
		if s.auditor != nil {
			s.auditor.Record(ev)
		}
		if s.pusher != nil {
			s.pusher.Looked(client.ID, ev.PlanIDs, start)
		}
	}
	ctx.SetContentType("application/json")
	buf := bodyPool.Get().(*[]byte)
	*buf = AppendResponse((*buf)[:0], id, res, links)
	ctx.SetBody(*buf) // copies
	bodyPool.Put(buf)
	took := s.now().Sub(start)
	s.metrics.Latency.Observe(took.Seconds())
	s.lookupCounter(client, res.Tier).Inc()
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // building the record costs allocations
		s.log.Debug("lookup", "request_id", id, "client_id", client.ID, "tier", res.Tier.String(),
			"candidates", len(res.Candidates), "micros", took.Microseconds())
	}
}

func (s *Server) authenticate(ctx *fasthttp.RequestCtx) *Client {
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return nil
	}
	return s.clients.Authenticate(bytes.TrimSpace(h[len(prefix):]))
}

// fail writes an error answer and counts it.
func (s *Server) fail(ctx *fasthttp.RequestCtx, e *Error, requestID string) {
	ctx.SetStatusCode(e.Status)
	ctx.SetContentType("application/json")
	body := struct {
		Error     *Error `json:"error"`
		RequestID string `json:"request_id,omitempty"`
	}{e, requestID}
	b, _ := json.Marshal(body)
	ctx.SetBody(b)
	s.metrics.Errors.WithLabelValues(e.Code).Inc()
	if e.Status >= 500 {
		s.log.Warn("request refused", "request_id", requestID, "status", e.Status, "code", e.Code)
	}
}

// refuse answers a lookup request from client (nil: not known) with e, as
// fail does, and audits it when the client is known: the request was given
// a request ID, which the client may quote. The event names the fields the
// request body supplied (read again here: a refusal may come before or
// during its decoding), never their values, and no plans.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, e *Error, requestID string, client *Client, at time.Time) {
	s.fail(ctx, e, requestID)
	if s.auditor == nil || client == nil {
		return
	}
	fields := fieldSets[0]
	if body := ctx.PostBody(); len(body) <= s.cfg.MaxBody {
		fields = suppliedFields(body)
	}
	s.auditor.Record(&AuditEvent{RequestID: requestID, ClientID: client.ID, Time: at.UTC(), Fields: fields,
		Tier: TierRefused, PlanIDs: []string{}, Code: e.Code})
}

// suppliedFields names the lookup fields a request body gives a value (not
// null, not an empty string; of any JSON type, as a refused one may be),
// in the order audit events list them. A body that is not a JSON object
// supplies none.
func suppliedFields(body []byte) []string {
	if len(body) == 0 || fastjson.ValidateBytes(body) != nil {
		return fieldSets[0]
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return fieldSets[0]
	}
	given := 0
	v.GetObject().Visit(func(key []byte, val *fastjson.Value) {
		i := requestField(key)
		if i < 0 || val.Type() == fastjson.TypeNull || val.Type() == fastjson.TypeString && len(val.GetStringBytes()) == 0 {
			return
		}
		given |= 1 << i
	})
	return fieldSets[given]
}

// auditEvent describes an answered lookup: the names of the fields given,
// never their values.
func auditEvent(id, client string, at time.Time, q *matcher.Query, r *matcher.Result, links []careplanclient.Link) *AuditEvent {
	given := 0
	for i, v := range [len(queryFields)]string{q.NHSNumber, q.GivenName, q.FamilyName, q.BirthDate, q.Gender, q.Postcode, q.Address, q.Phone} {
		if v != "" {
			given |= 1 << i
		}
	}
	e := &AuditEvent{RequestID: id, ClientID: client, Time: at.UTC(), Tier: r.Tier.String(),
		Fields: fieldSets[given], PlanIDs: make([]string, 0, len(r.Candidates))}
	for i := range r.Candidates {
		e.PlanIDs = append(e.PlanIDs, r.Candidates[i].PlanID)
	}
	for _, l := range links {
		e.LinkIDs = append(e.LinkIDs, l.ID)
	}
	return e
}

// queryFields are the lookup request's fields in the order audit events
// list them.
var queryFields = [...]string{"nhs_number", "given_name", "family_name", "birth_date", "gender", "postcode", "address", "phone"}

// fieldSets[m] lists the fields of queryFields whose bits are set in m: every
// set of supplied fields built once, so an audit event shares its list
// rather than allocating one. Read only.
var fieldSets = func() (sets [1 << len(queryFields)][]string) {
	for m := range sets {
		sets[m] = []string{}
		for i, f := range queryFields {
			if m&(1<<i) != 0 {
				sets[m] = append(sets[m], f)
			}
		}
		sets[m] = sets[m][:len(sets[m]):len(sets[m])] // an append by a reader copies
	}
	return sets
}()
