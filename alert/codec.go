package alert

import (
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/matcher"
)

// The lookup path reads requests with fastjson (a reusable parser, no
// reflection) and writes answers by appending bytes: encoding/json cost
// more than the match itself.

var parsers fastjson.ParserPool

// requestFields are the lookup request's fields, in Query's order.
var requestFields = [...]string{"nhs_number", "given_name", "family_name", "birth_date", "gender", "postcode", "address", "phone"}

// requestField returns the index in requestFields of a request key, in
// any case of letters (as encoding/json reads keys), or -1 for a key the
// API does not know (ignored).
func requestField(key []byte) int {
	for i, f := range requestFields {
		if string(key) == f { // no allocation: the compiler compares in place
			return i
		}
	}
	var lower [16]byte
	if len(key) > len(lower) {
		return -1
	}
	folded := false
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			folded = true
		}
		lower[i] = c
	}
	if !folded {
		return -1
	}
	return requestField(lower[:len(key)])
}

// queryField is where field i of requestFields goes in q.
func queryField(q *matcher.Query, i int) *string {
	switch i {
	case 0:
		return &q.NHSNumber
	case 1:
		return &q.GivenName
	case 2:
		return &q.FamilyName
	case 3:
		return &q.BirthDate
	case 4:
		return &q.Gender
	case 5:
		return &q.Postcode
	case 6:
		return &q.Address
	}
	return &q.Phone
}

// DecodeRequest reads a lookup request: a JSON object of optional string
// fields (null counts as absent, unknown keys are ignored, a known one may
// come once, in any case of letters), or, when wrapped is allowed, a line of
// the form {"query": {…}} with other keys ignored. Input that is not JSON
// (RFC 8259: escapes, control characters, numbers; fastjson's parser alone
// lets some through) is refused. Errors name the field and never quote the
// input.
func DecodeRequest(b []byte, wrapped bool) (matcher.Query, *Error) {
	var q matcher.Query
	if len(b) == 0 || isSpace(b) {
		return q, Errorf(400, "invalid_json", "empty request body")
	}
	if fastjson.ValidateBytes(b) != nil {
		return q, Errorf(400, "invalid_json", "malformed JSON")
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(b)
	if err != nil {
		return q, Errorf(400, "invalid_json", "malformed JSON")
	}
	if wrapped {
		if inner := v.Get("query"); inner != nil {
			if inner.Type() != fastjson.TypeObject {
				e := Errorf(400, "invalid_json", "query: want a JSON object of the lookup's fields, got JSON %s", inner.Type())
				e.Field = "query"
				return q, e
			}
			v = inner
		}
	}
	o, err := v.Object()
	if err != nil {
		return q, Errorf(400, "invalid_json", "request must be a JSON object, got JSON %s", v.Type())
	}
	// The values point into the parser's buffer until it is reused: they
	// are copied out together, into one allocation, once all are read.
	var fail *Error
	var vals [len(requestFields)][]byte
	var seen [len(requestFields)]bool
	size := 0
	o.Visit(func(key []byte, val *fastjson.Value) {
		i := requestField(key)
		if i < 0 || fail != nil {
			return
		}
		name := requestFields[i]
		if seen[i] {
			// Which of two values was meant cannot be known; taking
			// either could miss the plan or flag another.
			fail = Errorf(400, "invalid_"+name, "%s: given more than once", name)
			fail.Field = name
			return
		}
		seen[i] = true
		switch val.Type() {
		case fastjson.TypeString:
			s, _ := val.StringBytes()
			vals[i] = s
			size += len(s)
		case fastjson.TypeNull:
		default:
			fail = Errorf(400, "invalid_"+name, "%s: must be a string, got JSON %s", name, val.Type())
			fail.Field = name
		}
	})
	if fail != nil || size == 0 {
		return q, fail
	}
	all := make([]byte, 0, size)
	for i, v := range vals {
		if len(v) == 0 {
			continue
		}
		off := len(all)
		all = append(all, v...)
		*queryField(&q, i) = unsafe.String(unsafe.SliceData(all[off:]), len(v))
	}
	return q, nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// AppendResponse appends the JSON answer for a match result (the shape of
// LookupResponse) to dst; links, if not nil, holds each candidate's plan
// link.
func AppendResponse(dst []byte, requestID string, r matcher.Result, links []careplanclient.Link) []byte {
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, requestID)
	if r.Flag() {
		dst = append(dst, `,"flag":true,"tier":"`...)
	} else {
		dst = append(dst, `,"flag":false,"tier":"`...)
	}
	dst = append(dst, r.Tier.String()...)
	dst = append(dst, `","candidates":[`...)
	for i := range r.Candidates {
		c := &r.Candidates[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"plan_id":`...)
		dst = appendString(dst, c.PlanID)
		dst = append(dst, `,"tier":"`...)
		dst = append(dst, c.Tier.String()...)
		dst = append(dst, `","score":`...)
		dst = strconv.AppendFloat(dst, c.Score, 'f', -1, 64)
		if i < len(links) {
			dst = append(dst, `,"link":`...)
			dst = appendString(dst, links[i].URL)
			dst = append(dst, `,"link_expires_at":"`...)
			dst = links[i].Expires.UTC().AppendFormat(dst, time.RFC3339)
			dst = append(dst, '"')
		}
		dst = append(dst, `,"agreement":{`...)
		a := &c.Agreement
		for f := matcher.FieldNHSNumber; f <= matcher.FieldPhone; f++ {
			if f > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = append(dst, f.String()...)
			dst = append(dst, `":"`...)
			dst = append(dst, a.Level(f).String()...)
			dst = append(dst, '"')
		}
		dst = append(dst, `}}`...)
	}
	return append(dst, `]}`...)
}

// appendString appends s as a JSON string as encoding/json writes it
// (quotes, backslashes and control characters escaped, each byte that is not
// part of valid UTF-8 written as U+FFFD, so the output is valid JSON
// whatever s holds), except that <, >, &, U+2028 and U+2029 are left as
// they are, which any JSON reader reads the same.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	plain := 0 // s[plain:i] needs no escaping and is appended in one go
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n != 1 {
				i += n
				continue
			}
		}
		dst = append(dst, s[plain:i]...)
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\b':
			dst = append(dst, '\\', 'b')
		case c == '\f':
			dst = append(dst, '\\', 'f')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, `\ufffd`...)
		}
		i++
		plain = i
	}
	dst = append(dst, s[plain:]...)
	return append(dst, '"')
}
