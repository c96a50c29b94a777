package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/planflag/planflag/matcher"
)

const upsertLine = `{"type": "plan.upserted", "plan_id": "UCP-123", "version": 7, "occurred_at": "2026-11-24T10:00:00Z",
 "patient": {"nhs_number": "9434765919", "given_names": ["Margaret", "Ann"], "family_name": "O'Brien",
   "other_names": [{"given_names": ["Margaret"], "family_name": "Kelly", "use": "maiden"}],
   "birth_date": "1941-03-07", "gender": "female",
   "addresses": [{"lines": ["Flat 2", "14 Elm Road"], "city": "London", "postcode": "SW1A 1AA"}],
   "phones": ["+447700900123"]}, "extra": {"ignored": true}}`

func TestDecode(t *testing.T) {
	ev, err := Decode([]byte(upsertLine))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeUpserted || ev.PlanID != "UCP-123" || ev.Version != 7 || ev.Patient == nil ||
		ev.Patient.FamilyName != "O'Brien" || len(ev.Patient.OtherNames) != 1 || ev.Patient.Addresses[0].Postcode != "SW1A 1AA" {
		t.Errorf("decoded %+v", ev)
	}
	ev, err = Decode([]byte(`{"type": "plan.withdrawn", "plan_id": "UCP-123", "version": 8, "occurred_at": "2026-11-25T08:00:00Z"}`))
	if err != nil || ev.Change().Patient != nil || ev.Version != 8 {
		t.Errorf("withdrawn: %+v %v", ev, err)
	}

	bad := map[string]string{
		``:         "empty",
		`not json`: "invalid JSON",
		`[]`:       "want",
		`{"type":"plan.upserted","plan_id":"A","version":1}`:                                      "without patient",
		`{"type":"plan.upserted","version":1,"patient":{}}`:                                       "plan_id",
		`{"type":"plan.upserted","plan_id":"A","patient":{}}`:                                     "version",
		`{"type":"plan.upserted","plan_id":"A","version":-1,"patient":{}}`:                        "version",
		`{"type":"plan.deleted","plan_id":"A","version":1}`:                                       "unknown type",
		`{"plan_id":"A","version":1}`:                                                             "missing type",
		`{"type":"plan.upserted","plan_id":"A","version":1,"patient":{"given_names":"Margaret"}}`: "given_names",
		`{"type":"plan.upserted","plan_id":"A","version":"7","patient":{}}`:                       "version",
	}
	for in, want := range bad {
		_, err := Decode([]byte(in))
		var dl *DeadLetterError
		if !errors.As(err, &dl) || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want a dead letter mentioning %q", in, err, want)
		}
	}
	// A dead letter never quotes the event's personal data.
	_, err = Decode([]byte(`{"type":"plan.upserted","plan_id":"A","version":1,"patient":{"family_name":["OBrien"]}}`))
	if err == nil || strings.Contains(err.Error(), "OBrien") {
		t.Errorf("dead letter %v", err)
	}
}

// A withdrawal needs only its type, plan ID and version: a malformed field
// it does not use must not leave the plan flagged. An upsert with the same
// field is still refused, and so is a withdrawal whose own fields are bad.
func TestDecodeWithdrawalDespiteOtherFields(t *testing.T) {
	for in, ignored := range map[string]string{
		`{"type":"plan.withdrawn","plan_id":"UCP-1","version":8,"occurred_at":"2026-11-25 08:00:00"}`: "occurred_at",
		`{"type":"plan.withdrawn","plan_id":"UCP-1","version":8,"occurred_at":1764057600}`:            "occurred_at",
		`{"type":"plan.withdrawn","plan_id":"UCP-1","version":8,"patient":"erased"}`:                  "patient",
		`{"type":"plan.withdrawn","plan_id":"UCP-1","version":8,"patient":{"given_names":"Ann"}}`:     "patient.given_names",
	} {
		ev, err := Decode([]byte(in))
		if err != nil || ev.PlanID != "UCP-1" || ev.Version != 8 || ev.Patient != nil || !ev.OccurredAt.IsZero() {
			t.Errorf("Decode(%s) = %+v, %v; want the withdrawal of UCP-1 at 8", in, ev, err)
			continue
		}
		if !strings.Contains(ev.Ignored, "field "+ignored+":") {
			t.Errorf("Decode(%s).Ignored = %q, want it to name %s", in, ev.Ignored, ignored)
		}
		up := strings.Replace(in, "plan.withdrawn", "plan.upserted", 1)
		if _, err := Decode([]byte(up)); err == nil {
			t.Errorf("Decode(%s) accepted an upsert with a malformed field", up)
		}
	}
	for _, in := range []string{
		`{"type":"plan.withdrawn","plan_id":"UCP-1","version":"8","patient":"erased"}`,
		`{"type":"plan.withdrawn","plan_id":8,"version":8,"occurred_at":1}`,
		`{"type":"plan.withdrawn","plan_id":"UCP-1","occurred_at":1}`,
	} {
		if ev, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%s) = %+v, want a dead letter", in, ev)
		}
	}
	if ev, err := Decode([]byte(`{"type":"plan.withdrawn","plan_id":"UCP-1","version":8}`)); err != nil || ev.Ignored != "" {
		t.Errorf("a well-formed withdrawal: %+v, %v", ev, err)
	}
}

// A read that fails mid-line (shutdown closing the file, an I/O error)
// stops the load: the part of a line read before it is not an event, and
// not counted as a dead letter the log would then report.
func TestLoadJSONLStoppedMidLine(t *testing.T) {
	full := `{"type":"plan.upserted","plan_id":"A","version":1,"patient":{"given_names":["John"],"family_name":"Smith","birth_date":"1950-01-01"}}`
	in := io.MultiReader(strings.NewReader(full+"\n"+full[:40]), iotest.ErrReader(context.Canceled))
	ix := matcher.NewIndex(nil)
	st, err := LoadJSONL(in, ix, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the read's", err)
	}
	if st.Events != 1 || st.Upserted != 1 || st.DeadLetters != 0 || len(st.FirstDeadLetters) != 0 {
		t.Errorf("stats %+v; want the one whole line applied and no dead letter", st)
	}
}

func TestLoadJSONL(t *testing.T) {
	var one bytes.Buffer
	if err := json.Compact(&one, []byte(upsertLine)); err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		one.String(),
		``,
		`{"type":"plan.upserted","plan_id":"B","version":1,"patient":{"given_names":["John"],"family_name":"Smith","birth_date":"1950-01-01"}}`,
		`{broken`,
		`{"type":"plan.withdrawn","plan_id":"B","version":2}`,
		`{"type":"plan.upserted","plan_id":"B","version":1,"patient":{"given_names":["John"],"family_name":"Smith","birth_date":"1950-01-01"}}`,
		`{"type":"plan.upserted","plan_id":"C","version":1,"patient":{"given_names":["Ann"],"birth_date":"31/02/1950"}}`,
		`{"type":"plan.upserted","plan_id":"D","version":1,"patient":{"given_names":["Ann"],"family_name":"Lee","birth_date":"1950-01-01"}}`,
		`{"type":"plan.withdrawn","plan_id":"D","version":2,"occurred_at":"yesterday"}`,
	}, "\n")
	ix := matcher.NewIndex(nil)
	st, err := LoadJSONL(strings.NewReader(in), ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 8 || st.DeadLetters != 1 || st.Upserted != 4 || st.Withdrawn != 2 || st.Stale != 1 || st.Sparse != 1 {
		t.Errorf("stats %+v", st)
	}
	if len(st.FirstDeadLetters) != 1 || !strings.HasPrefix(st.FirstDeadLetters[0], "line 4:") {
		t.Errorf("dead letters %q", st.FirstDeadLetters)
	}
	if st.FieldProblems["birth_date"] != 1 || st.FieldProblems["withdrawal applied without field occurred_at: want an RFC 3339 time"] != 1 {
		t.Errorf("field problems %v", st.FieldProblems)
	}
	if ix.Live() != 2 {
		t.Errorf("live %d, want 2 (UCP-123 and the sparse C)", ix.Live())
	}
	if _, live := ix.Version("D"); live {
		t.Errorf("D's withdrawal was not applied")
	}
	if _, live := ix.Version("B"); live {
		t.Errorf("withdrawn B came back from a stale copy")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(upsertLine))
	f.Add([]byte(`{"type":"plan.withdrawn","plan_id":"A","version":2}`))
	f.Add([]byte(`{"type":"plan.upserted","plan_id":"A","version":1,"patient":{"addresses":[{"lines":[""]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			var dl *DeadLetterError
			if !errors.As(err, &dl) {
				t.Fatalf("error %v is not a dead letter", err)
			}
			return
		}
		if ev.PlanID == "" || ev.Version == 0 || (ev.Type == TypeUpserted) != (ev.Patient != nil) {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
		// Whatever decodes must apply without panicking.
		matcher.NewIndex(nil).Apply([]matcher.Change{ev.Change()})
	})
}
