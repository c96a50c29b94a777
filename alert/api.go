package alert

import (
	"errors"
	"fmt"
	"time"

	"github.com/planflag/planflag/careplanclient"
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

// Response builds the answer for a match result; links, if not nil, holds
// each candidate's plan link.
func Response(requestID string, r matcher.Result, links []careplanclient.Link) LookupResponse {
	resp := LookupResponse{RequestID: requestID, Flag: r.Flag(), Tier: r.Tier.String(), Candidates: make([]Candidate, len(r.Candidates))}
	for i, c := range r.Candidates {
		resp.Candidates[i] = Candidate{PlanID: c.PlanID, Tier: c.Tier.String(), Score: c.Score, Agreement: c.Agreement}
		if i < len(links) {
			exp := links[i].Expires.UTC()
			resp.Candidates[i].Link, resp.Candidates[i].LinkExpiresAt = links[i].URL, &exp
		}
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
