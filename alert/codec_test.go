package alert

import (
	"encoding/json"
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
