package alert

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/matcher"
)

// The appended answer is the same JSON encoding/json gives for LookupResponse.
func TestAppendResponseMatchesEncodingJSON(t *testing.T) {
	res := matcher.Result{Tier: matcher.TierPossible, Candidates: []matcher.Candidate{
		{PlanID: `UCP-"1"\x`, Tier: matcher.TierPossible, Score: 31.2, Agreement: matcher.Agreement{GivenName: matcher.Nickname, BirthDate: matcher.DayMonthSwapped}},
		{PlanID: "UCP-2\n", Tier: matcher.TierPossible, Score: -3, Agreement: matcher.Agreement{Postcode: matcher.OutwardOnly}},
	}}
	keys := careplanclient.RandomKeys("k1")
	l := &careplanclient.Linker{Base: "https://plans.example/open", Keys: keys}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	links := []careplanclient.Link{l.Make("UCP-1", "c", now), l.Make("UCP-2", "c", now)}
	for _, tc := range []struct {
		r     matcher.Result
		links []careplanclient.Link
	}{{res, nil}, {res, links}, {matcher.Result{}, nil}} {
		r := tc.r
		got := AppendResponse(nil, "req-1", r, tc.links)
		want, _ := json.Marshal(Response("req-1", r, tc.links))
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("not JSON: %s", got)
		}
		json.Unmarshal(want, &b)
		ga, _ := json.Marshal(a)
		gb, _ := json.Marshal(b)
		if string(ga) != string(gb) {
			t.Errorf("appended\n%s\nencoding/json\n%s", ga, gb)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	q, err := DecodeRequest([]byte(`{"given_name":"Ann","family_name":null,"phone":"07700 900123","extra":[1,2]}`), false)
	if err != nil || q.GivenName != "Ann" || q.FamilyName != "" || q.Phone != "07700 900123" {
		t.Errorf("%+v %v", q, err)
	}
	q, err = DecodeRequest([]byte(`{"query":{"given_name":"Ann"},"expect":null}`), true)
	if err != nil || q.GivenName != "Ann" {
		t.Errorf("wrapped: %+v %v", q, err)
	}
	// A wrapped line whose query is not an object says so, rather than
	// being read as a request of unknown keys (too little to search on).
	for _, in := range []string{`{"query": 5}`, `{"query": "Ann Lee"}`, `{"query": null}`} {
		if _, err := DecodeRequest([]byte(in), true); err == nil || err.Field != "query" || err.Code != "invalid_json" {
			t.Errorf("wrapped %s: %v, want invalid_json naming query", in, err)
		}
	}
	q, err = DecodeRequest([]byte(`{"given_name":"Ann \u00e9"}`), false)
	if err != nil || q.GivenName != "Ann é" {
		t.Errorf("escape: %+v %v", q, err)
	}
	for in, field := range map[string]string{`{"postcode": 12}`: "postcode", `{"gender": {}}`: "gender"} {
		if _, err := DecodeRequest([]byte(in), false); err == nil || err.Field != field {
			t.Errorf("%s: %v", in, err)
		}
	}
	for _, in := range []string{``, ` `, `{`, `[]`, `"x"`, `{"a":}`, `{"given_name":"secret"`} {
		_, err := DecodeRequest([]byte(in), false)
		if err == nil || err.Code != "invalid_json" || strings.Contains(err.Message, "secret") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// What is not JSON, and a field given twice, are refused, naming the field
// where there is one and never quoting the input; fastjson's parser alone
// takes the first lot.
func TestDecodeRequestStrict(t *testing.T) {
	base := `"family_name":"Clarke","birth_date":"1952-06-04"`
	for _, c := range []struct{ in, code, field string }{
		{`{"given_name":"Mil\qlie",` + base + `}`, "invalid_json", ""},
		{"{\"given_name\":\"Mil\x01lie\"," + base + "}", "invalid_json", ""},
		{"{\"given_name\":\"Mil\nlie\"," + base + "}", "invalid_json", ""},
		{`{"given_name":"Mil\u12",` + base + `}`, "invalid_json", ""},
		{`{"given_name":"Millie","x":01,` + base + `}`, "invalid_json", ""},
		{`{"given_name":"Millie","x":1.e5,` + base + `}`, "invalid_json", ""},
		{`{"given_name":"Millie","x":NaN,` + base + `}`, "invalid_json", ""},
		{`{"given_name":"Millie",` + base + `,"birth_date":"1961-01-01"}`, "invalid_birth_date", "birth_date"},
		{`{"given_name":"Millie",` + base + `,"Birth_Date":"1961-01-01"}`, "invalid_birth_date", "birth_date"},
		{`{"given_name":null,"given_name":"Millie",` + base + `}`, "invalid_given_name", "given_name"},
	} {
		_, err := DecodeRequest([]byte(c.in), false)
		if err == nil || err.Code != c.code || err.Field != c.field || strings.Contains(err.Message, "lie") {
			t.Errorf("%q: %+v, want %s naming %q", c.in, err, c.code, c.field)
		}
	}
	// Bytes that JSON allows but a caller never sends (invalid UTF-8, an
	// escaped NUL) reach the matcher, which refuses them naming the field.
	for _, in := range []string{"{\"given_name\":\"Mil\xfflie\"," + base + "}", `{"given_name":"Mil\u0000lie",` + base + `}`} {
		q, err := DecodeRequest([]byte(in), false)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		_, merr := matcher.NewIndex(nil).Match(q)
		var ie *matcher.InputError
		if !errors.As(merr, &ie) || ie.Field != "given_name" {
			t.Errorf("%q: match error %v, want one naming given_name", in, merr)
		}
	}
}

// Every field, keys in other cases, escapes and empty values decode as
// encoding/json decodes them, and a decoded query stays intact when the
// parser is used again. (A repeated key is refused: TestDecodeRequestStrict.)
func TestDecodeRequestAgreesWithEncodingJSON(t *testing.T) {
	ins := []string{
		`{"nhs_number":"943 476 5919","given_name":"Ann","family_name":"O'Brien","birth_date":"1941-03-07",` +
			`"gender":"female","postcode":"SW1A 1AA","address":"14 Elm Rd","phone":"07700 900123"}`,
		`{"Given_Name":"Anne","FAMILY_NAME":"Smith"}`,
		`{"given_name":"","family_name":"Sm\u00efth","postcode":null,"address":"Flat 2\n14 Elm Rd"}`,
		`{"phone":"01632 960001","unknown":{"given_name":"not this one"}}`,
	}
	var decoded []matcher.Query
	for _, in := range ins {
		got, err := DecodeRequest([]byte(in), false)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want matcher.Query
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", in, got, want)
		}
		decoded = append(decoded, got)
	}
	for i, in := range ins { // after every later parse
		var want matcher.Query
		json.Unmarshal([]byte(in), &want)
		if decoded[i] != want {
			t.Errorf("query %d changed after later parses: %+v", i, decoded[i])
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"given_name":"Ann","birth_date":"1941-03-07"}`))
	f.Add([]byte(`{"query":{"phone":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b, true)
		if err != nil && (err.Status != 400 || err.Code == "") {
			t.Fatalf("error %+v", err)
		}
		_ = q
	})
}

// appendString writes valid JSON that reads back as s, with invalid UTF-8
// read back as U+FFFD, as encoding/json writes it.
func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "UCP-123", `say "hi"\`, "tab\there\nnew\x00\x1f\r\b\f", "Zoë Ó Súilleabháin", "日本",
		"bad \xff byte", "cut \xe6\x97", "\xed\xa0\x80 surrogate", "<a&b>", "line\u2028sep", "\x7f",
	} {
		got := appendString([]byte("x"), s)
		if got[0] != 'x' {
			t.Fatalf("%q: the bytes before were changed", s)
		}
		got = got[1:]
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q: not a JSON string: %s (%v)", s, got, err)
			continue
		}
		want := strings.Map(func(r rune) rune { return r }, s) // each bad byte a U+FFFD, as range reads it
		if back != want {
			t.Errorf("%q: reads back as %q, want %q", s, back, want)
		}
		if std, _ := json.Marshal(s); !strings.ContainsAny(s, "<>&\u2028") && string(std) != string(got) {
			t.Errorf("%q: appended %s, encoding/json %s", s, got, std)
		}
	}
}

// An audit event appended by hand is the JSON encoding/json makes of it.
func TestAuditEventAppendJSON(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 4, 5, 123456789, time.UTC)
	for _, e := range []AuditEvent{
		{RequestID: "r-1", ClientID: "cad-north", Time: at, Fields: []string{"given_name", "postcode"}, Tier: "match",
			PlanIDs: []string{"UCP-1"}, LinkIDs: []string{"0a1b2c"}},
		{RequestID: "r-2", ClientID: "c\"q\\", Time: at.Truncate(time.Second), Fields: []string{}, Tier: "none", PlanIDs: []string{}},
		{RequestID: "r-3", ClientID: "c", Time: at, Tier: "possible", PlanIDs: []string{"UCP-\xff", "UCP-é\n"}, LinkIDs: []string{}},
		{},
	} {
		got := e.AppendJSON(nil)
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("appended\n%s\nencoding/json\n%s", got, want)
		}
		var back AuditEvent
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("not JSON: %s: %v", got, err)
		}
	}
}
