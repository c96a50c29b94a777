package feed

import (
	"bytes"
	"fmt"
	"time"

	"github.com/valyala/fastjson"

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

// Events are read with fastjson (a reusable parser, no reflection): decoding
// is most of the cost of ingest, and encoding/json was three times slower.
var eventParsers fastjson.ParserPool

// Decode reads one event (a Kafka value or a line of a .jsonl file) and
// validates it against the contract. Unknown fields are ignored and null
// counts as absent. The error, if any, is a *DeadLetterError naming the
// field and the problem, never quoting a value.
func Decode(b []byte) (Event, error) {
	var ev Event
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ev, deadLetter("empty event")
	}
	p := eventParsers.Get()
	defer eventParsers.Put(p)
	v, err := p.ParseBytes(b)
	if err != nil {
		return ev, deadLetter("not an event object: invalid JSON")
	}
	if v.Type() != fastjson.TypeObject {
		return ev, deadLetter("not an event object: want an object, got JSON %s", v.Type())
	}
	// The fields every event needs first; a withdrawal needs nothing else,
	// so a problem in the rest (rest) does not stop consent being withdrawn.
	var d, rest decoder
	ev.Type = d.str(v, "type")
	ev.PlanID = d.str(v, "plan_id")
	if n := present(v, "version"); n != nil {
		u, err := n.Uint64()
		if n.Type() != fastjson.TypeNumber || err != nil {
			d.fail("version", "want a positive integer, got JSON %s", n.Type())
		}
		ev.Version = u
	}
	if t := rest.str(v, "occurred_at"); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			rest.fail("occurred_at", "want an RFC 3339 time")
		}
		ev.OccurredAt = at
	}
	if pv := present(v, "patient"); pv != nil {
		if pv.Type() != fastjson.TypeObject {
			rest.fail("patient", "want an object, got JSON %s", pv.Type())
		} else {
			ev.Patient = rest.patient(pv)
		}
	}
	if d.err != nil {
		return ev, d.err
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
		if rest.err != nil {
			return ev, rest.err
		}
		if ev.Patient == nil {
			return ev, deadLetter("plan.upserted without patient")
		}
	case TypeWithdrawn:
		ev.Patient = nil // a withdrawal carries no identifiers; drop any sent
		if rest.err != nil {
			// Applied all the same: refusing it would leave the plan flagged.
			ev.Ignored = rest.err.(*DeadLetterError).Reason
			ev.OccurredAt = time.Time{}
		}
	case "":
		return ev, deadLetter("missing type")
	default:
		return ev, deadLetter("unknown type (want %s or %s)", TypeUpserted, TypeWithdrawn)
	}
	return ev, nil
}

// present returns v's field key, or nil when it is absent or null.
func present(v *fastjson.Value, key string) *fastjson.Value {
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return nil
	}
	return f
}

// decoder reads typed fields and keeps the first problem, named by its
// path in the event.
type decoder struct {
	err  error
	path string // prefix of field names, e.g. "patient."
}

func (d *decoder) fail(field, format string, args ...any) {
	if d.err == nil {
		d.err = deadLetter("field %s%s: %s", d.path, field, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) str(v *fastjson.Value, key string) string {
	f := present(v, key)
	if f == nil {
		return ""
	}
	b, err := f.StringBytes()
	if err != nil {
		d.fail(key, "want a string, got JSON %s", f.Type())
		return ""
	}
	return string(b)
}

func (d *decoder) strs(v *fastjson.Value, key string) []string {
	f := present(v, key)
	if f == nil {
		return nil
	}
	arr, err := f.Array()
	if err != nil {
		d.fail(key, "want an array of strings, got JSON %s", f.Type())
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		b, err := e.StringBytes()
		if err != nil {
			d.fail(key, "want an array of strings, got an element of JSON %s", e.Type())
			return nil
		}
		out = append(out, string(b))
	}
	return out
}

// objects calls each for every object in the array field key.
func (d *decoder) objects(v *fastjson.Value, key string, each func(*fastjson.Value)) {
	f := present(v, key)
	if f == nil {
		return
	}
	arr, err := f.Array()
	if err != nil {
		d.fail(key, "want an array of objects, got JSON %s", f.Type())
		return
	}
	for _, e := range arr {
		if e.Type() != fastjson.TypeObject {
			d.fail(key, "want an array of objects, got an element of JSON %s", e.Type())
			return
		}
		each(e)
	}
}

func (d *decoder) patient(v *fastjson.Value) *matcher.Patient {
	outer := d.path
	d.path = "patient."
	defer func() { d.path = outer }()
	p := &matcher.Patient{
		NHSNumber:  d.str(v, "nhs_number"),
		GivenNames: d.strs(v, "given_names"),
		FamilyName: d.str(v, "family_name"),
		BirthDate:  d.str(v, "birth_date"),
		Gender:     d.str(v, "gender"),
		Phones:     d.strs(v, "phones"),
	}
	d.objects(v, "other_names", func(o *fastjson.Value) {
		d.path = "patient.other_names[]."
		p.OtherNames = append(p.OtherNames, matcher.Name{GivenNames: d.strs(o, "given_names"),
			FamilyName: d.str(o, "family_name"), Use: d.str(o, "use")})
		d.path = "patient."
	})
	d.objects(v, "addresses", func(o *fastjson.Value) {
		d.path = "patient.addresses[]."
		p.Addresses = append(p.Addresses, matcher.Address{Lines: d.strs(o, "lines"),
			City: d.str(o, "city"), Postcode: d.str(o, "postcode")})
		d.path = "patient."
	})
	return p
}

// Change turns a decoded event into the change the index applies.
func (ev *Event) Change() matcher.Change {
	return matcher.Change{PlanID: ev.PlanID, Version: ev.Version, Patient: ev.Patient}
}
