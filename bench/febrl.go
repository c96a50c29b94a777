package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// FEBRLOptions adjusts the FEBRL 4 conversion.
type FEBRLOptions struct {
	// IDAsNHS maps soc_sec_id to an NHS-number-shaped identifier ("9" + the
	// id padded to eight digits + a modulus-11 check digit). FEBRL has no NHS
	// numbers; this shows what an identifier adds, and is off by default.
	// A caller's number keeps the check digit of the original record's: a
	// caller who mistypes a digit of a real NHS number does not recompute
	// its check digit, so the slip shows as an invalid number (as modulus 11
	// catches every single wrong digit and every swap of two neighbours),
	// not as somebody else's valid one.
	IDAsNHS bool
}

// FEBRL4 converts the FEBRL 4 benchmark (dataset4a.csv, dataset4b.csv) into
// a plan store and callers. The plan store is the 4a originals whose record
// number N is even (about half); the callers are all of 4b, each expecting
// plan "FEBRL-N" when N is in the store and no plan otherwise. FEBRL is
// Australian: postcodes are mapped to UK-shaped ones digit by digit (equal
// codes map equal, a one-digit typo becomes a one-character one); suburbs
// become cities; invalid birth dates in 4b (some are, on purpose) are left
// out of the query and marked in its kind.
func FEBRL4(aPath, bPath string, opt FEBRLOptions) (*Dataset, error) {
	a, err := readFEBRL(aPath)
	if err != nil {
		return nil, err
	}
	b, err := readFEBRL(bPath)
	if err != nil {
		return nil, err
	}
	d := &Dataset{}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	original := map[int]string{} // record number → the original's soc_sec_id
	for _, r := range a {
		original[r.n] = r.ssn
	}
	inStore := map[int]bool{}
	for _, r := range a {
		if r.n%2 != 0 {
			continue
		}
		inStore[r.n] = true
		pt := &matcher.Patient{FamilyName: r.surname, BirthDate: febrlDate(r.dob)}
		if r.given != "" {
			pt.GivenNames = []string{r.given}
		}
		lines := []string{strings.TrimSpace(r.number + " " + r.addr1)}
		if r.addr2 != "" {
			lines = append(lines, r.addr2)
		}
		pt.Addresses = []matcher.Address{{Lines: lines, City: r.suburb, Postcode: ukPostcode(r.postcode)}}
		if opt.IDAsNHS {
			pt.NHSNumber = idAsNHS(r.ssn)
		}
		t = t.Add(time.Second)
		d.Events = append(d.Events, feed.Event{Type: feed.TypeUpserted, PlanID: fmt.Sprintf("FEBRL-%d", r.n), Version: 1, OccurredAt: t, Patient: pt})
	}
	for _, r := range b {
		q := matcher.Query{GivenName: r.given, FamilyName: r.surname, Postcode: ukPostcode(r.postcode),
			Address: strings.TrimSpace(r.number + " " + r.addr1)}
		kind := "febrl"
		if q.BirthDate = febrlDate(r.dob); q.BirthDate == "" && r.dob != "" {
			kind += "+invalid-dob"
		}
		if opt.IDAsNHS {
			q.NHSNumber = callerNHS(r.ssn, original[r.n])
		}
		lq := LabeledQuery{Query: q, Kind: kind}
		if inStore[r.n] {
			lq.Expect = fmt.Sprintf("FEBRL-%d", r.n)
		} else {
			lq.Kind = "febrl-nonmember" + strings.TrimPrefix(kind, "febrl")
		}
		d.Queries = append(d.Queries, lq)
	}
	return d, nil
}

type febrlRecord struct {
	n                                                                int
	given, surname, number, addr1, addr2, suburb, postcode, dob, ssn string
}

func readFEBRL(path string) ([]febrlRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("febrl: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = 11
	var out []febrlRecord
	for line := 1; ; line++ {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("febrl %s line %d: %w", path, line, err)
		}
		if line == 1 {
			continue
		}
		for i := range row {
			row[i] = strings.TrimSpace(row[i])
		}
		var n int
		if _, err := fmt.Sscanf(row[0], "rec-%d-", &n); err != nil {
			return nil, fmt.Errorf("febrl %s line %d: record id not rec-N-…", path, line)
		}
		out = append(out, febrlRecord{n: n, given: row[1], surname: row[2], number: row[3], addr1: row[4],
			addr2: row[5], suburb: row[6], postcode: row[7], dob: row[9], ssn: row[10]})
	}
	return out, nil
}

// febrlDate turns YYYYMMDD into ISO, or "" if it is not a real date.
func febrlDate(s string) string {
	if len(s) != 8 {
		return ""
	}
	iso := s[:4] + "-" + s[4:6] + "-" + s[6:]
	if d, err := matcher.ParseDate(iso); err != nil || d == 0 {
		return ""
	}
	return iso
}

// ukPostcode maps a four-digit Australian postcode to a UK-shaped one, one
// character per digit: "S" and a letter for the first digit (the area), the
// second digit as the district, the third as the sector, a letter for the
// fourth and "Z" as the unit (4223 → SF2 2EZ). Anything else maps to "".
func ukPostcode(au string) string {
	if len(au) != 4 {
		return ""
	}
	for i := 0; i < 4; i++ {
		if au[i] < '0' || au[i] > '9' {
			return ""
		}
	}
	const letters = "ABDEFGHJLN" // none of C I K M O V, which inward codes avoid
	return "S" + letters[au[0]-'0':au[0]-'0'+1] + au[1:2] + " " + au[2:3] + letters[au[3]-'0':au[3]-'0'+1] + "Z"
}

// idAsNHS maps a FEBRL soc_sec_id to a valid ten-digit NHS-shaped number,
// or "" when the id has no digits to map: a leading digit (9, else 8, else
// 7) that gives a valid check digit, the id padded to eight digits, and
// the check digit. (NHS numbers are issued only with valid check digits, so
// every FEBRL person gets one, as every registered patient has one.)
func idAsNHS(id string) string {
	nine, check, ok := nhsOf(id)
	if !ok {
		return ""
	}
	return nine + string(check)
}

// callerNHS is the NHS number a caller gives: the original's number with
// the caller's (perhaps corrupted) soc_sec_id digits in place of its own
// and its check digit kept, or "" when the caller gives no id.
func callerNHS(id, original string) string {
	nine, check, ok := nhsOf(original)
	if !ok {
		return ""
	}
	body, ok := nhsBody(nine[0], id)
	if !ok {
		return ""
	}
	return body + string(check)
}

// nhsOf maps an id to the first nine digits and the check digit of its
// NHS-shaped number.
func nhsOf(id string) (nine string, check byte, ok bool) {
	for _, lead := range []byte("987") {
		if nine, ok = nhsBody(lead, id); !ok {
			return "", 0, false
		}
		if check, ok = matcher.NHSCheckDigit(nine); ok {
			return nine, check, true
		}
	}
	return "", 0, false
}

// nhsBody is the nine digits a lead digit and an id of up to eight digits
// make: the lead, then the id padded with zeros.
func nhsBody(lead byte, id string) (string, bool) {
	if id == "" || len(id) > 8 || !allDigits(id) {
		return "", false
	}
	return string(lead) + strings.Repeat("0", 8-len(id)) + id, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
