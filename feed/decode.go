package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/planflag/planflag/matcher"
)

// DeadLetterError is why an event could not be applied. Its message names
// the problem, never the event's values.
type DeadLetterError struct {
	Reason string
}

func (e *DeadLetterError) Error() string { return "dead letter: " + e.Reason }

func deadLetter(format string, args ...any) error {
	return &DeadLetterError{Reason: fmt.Sprintf(format, args...)}
}

// Decode reads one event (a Kafka value or a line of a .jsonl file) and
// validates it against the contract. Unknown fields are ignored. The error,
// if any, is a *DeadLetterError.
func Decode(b []byte) (Event, error) {
	var ev Event
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ev, deadLetter("empty event")
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, deadLetter("not an event object: %s", jsonProblem(err))
	}
	if ev.PlanID == "" {
		return ev, deadLetter("missing plan_id")
	}
	if len(ev.PlanID) > 128 {
		return ev, deadLetter("plan_id longer than 128 bytes")
	}
	if ev.Version == 0 {
		return ev, deadLetter("missing or zero version")
	}
	switch ev.Type {
	case TypeUpserted:
		if ev.Patient == nil {
			return ev, deadLetter("plan.upserted without patient")
		}
	case TypeWithdrawn:
		ev.Patient = nil // a withdrawal carries no identifiers; drop any sent
	case "":
		return ev, deadLetter("missing type")
	default:
		return ev, deadLetter("unknown type (want %s or %s)", TypeUpserted, TypeWithdrawn)
	}
	return ev, nil
}

// jsonProblem describes a JSON error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %s: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("want %s, got JSON %s", typ.Type, typ.Value)
	}
	return "invalid JSON"
}

// Change turns a decoded event into the change the index applies.
func (ev *Event) Change() matcher.Change {
	return matcher.Change{PlanID: ev.PlanID, Version: ev.Version, Patient: ev.Patient}
}
