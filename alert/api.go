package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/planflag/planflag/matcher"
)

// LookupResponse is the body of a 200 answer to POST /v1/lookup, and one
// line of `flagd lookup` output.
type LookupResponse struct {
	RequestID  string      `json:"request_id"`
	Flag       bool        `json:"flag"`
	Tier       string      `json:"tier"`
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one plan in an answer: its ID, tier, score, a link to open
// it, and how each field agreed — never the stored values.
type Candidate struct {
	PlanID        string            `json:"plan_id"`
	Tier          string            `json:"tier"`
	Score         float64           `json:"score"`
	Link          string            `json:"link,omitempty"`
	LinkExpiresAt *time.Time        `json:"link_expires_at,omitempty"`
	Agreement     matcher.Agreement `json:"agreement"`
}

// Response builds the answer for a match result.
func Response(requestID string, r matcher.Result) LookupResponse {
	resp := LookupResponse{RequestID: requestID, Flag: r.Flag(), Tier: r.Tier.String(), Candidates: make([]Candidate, len(r.Candidates))}
	for i, c := range r.Candidates {
		resp.Candidates[i] = Candidate{PlanID: c.PlanID, Tier: c.Tier.String(), Score: c.Score, Agreement: c.Agreement}
	}
	return resp
}

// Error is a failed request: an HTTP status, a stable code and a message
// that is safe to show a client (it names fields, never their values).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorBody is the JSON shape of an error answer.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Errorf returns an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// FromMatchError turns a matcher error into the answer a client sees.
func FromMatchError(err error) *Error {
	var ie *matcher.InputError
	if errors.As(err, &ie) {
		e := Errorf(400, "invalid_"+ie.Field, "%s", ie.Error())
		if ie.Field != "query" {
			e.Field = ie.Field
		} else {
			e.Code = "too_little_to_search"
		}
		return e
	}
	return Errorf(500, "internal", "internal error")
}

// DecodeRequest reads a lookup request: a JSON object of optional string
// fields (unknown fields ignored), or, when wrapped is allowed, a line of the
// form {"query": {…}} with other keys ignored.
func DecodeRequest(b []byte, wrapped bool) (matcher.Query, *Error) {
	var q matcher.Query
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return q, Errorf(400, "invalid_json", "empty request body")
	}
	if wrapped {
		var w struct {
			Query json.RawMessage `json:"query"`
		}
		if err := json.Unmarshal(b, &w); err == nil && len(w.Query) > 0 && !bytes.Equal(w.Query, []byte("null")) {
			b = w.Query
		}
	}
	if err := json.Unmarshal(b, &q); err != nil {
		var typ *json.UnmarshalTypeError
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &typ) && typ.Field != "":
			e := Errorf(400, "invalid_"+typ.Field, "%s: must be a string, got JSON %s", typ.Field, typ.Value)
			e.Field = typ.Field
			return q, e
		case errors.As(err, &typ):
			return q, Errorf(400, "invalid_json", "request must be a JSON object, got JSON %s", typ.Value)
		case errors.As(err, &syn):
			return q, Errorf(400, "invalid_json", "malformed JSON at byte %s", strconv.FormatInt(syn.Offset, 10))
		}
		return q, Errorf(400, "invalid_json", "malformed JSON")
	}
	return q, nil
}
