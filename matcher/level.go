package matcher

// Level is how one field of a query agrees with a plan holder's record. The
// same level names appear in a lookup response's "agreement" object; they
// describe agreement, never the values compared.
type Level uint8

// Levels. Missing means either side lacks the field; Different means both
// have it and it disagrees at every level the field knows.
const (
	Missing Level = iota
	Exact
	Nickname        // given name: a nickname or diminutive (Bob, Robert)
	Fuzzy           // names: Jaro-Winkler close (a typo)
	Phonetic        // names: same Soundex or NYSIIS code (Thomson, Thompson)
	Initial         // given name: only an initial, and it agrees
	MiddleName      // given name: agrees with a middle name
	OtherName       // family name: agrees with a maiden, alias or previous name
	Part            // family name: one part of a double-barrelled name
	Swapped         // names: given and family names swapped
	DayMonthSwapped // birth date: day and month swapped
	OneDigit        // birth date: one digit wrong
	YearOff         // birth date: same day and month, year one off
	SameYear        // birth date: same year only
	PreviousAddress // postcode or address: agrees with a previous address
	OutwardOnly     // postcode: the outward code agrees (or only it was given)
	OneCharOff      // postcode: one character wrong or two swapped
	Street          // address: same street, house number differs or missing
	ExactLandline   // phone: agrees, and is a UK landline (a household fact)
	InvalidCheck    // NHS number: the query's fails its check digit; not used
	Different       // both present, no agreement
	numLevels
)

var levelNames = [numLevels]string{
	Missing:         "missing",
	Exact:           "exact",
	Nickname:        "nickname",
	Fuzzy:           "fuzzy",
	Phonetic:        "phonetic",
	Initial:         "initial",
	MiddleName:      "middle-name",
	OtherName:       "other-name",
	Part:            "part",
	Swapped:         "swapped",
	DayMonthSwapped: "day-month-swapped",
	OneDigit:        "one-digit",
	YearOff:         "year-off-by-one",
	SameYear:        "same-year",
	PreviousAddress: "previous-address",
	OutwardOnly:     "outward-only",
	OneCharOff:      "one-char-off",
	Street:          "street",
	ExactLandline:   "exact-landline",
	InvalidCheck:    "invalid-check-digit",
	Different:       "different",
}

func (l Level) String() string {
	if l < numLevels {
		return levelNames[l]
	}
	return "unknown"
}

// MarshalText renders the level's name, for JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if n == string(b) {
			*l = Level(i)
			return nil
		}
	}
	return &InputError{Field: "level", Problem: "unknown agreement level"}
}

// Field names the compared fields, in the order of Agreement.
type Field uint8

const (
	FieldNHSNumber Field = iota
	FieldGivenName
	FieldFamilyName
	FieldBirthDate
	FieldGender
	FieldPostcode
	FieldAddress
	FieldPhone
	numFields
)

var fieldNames = [numFields]string{
	"nhs_number", "given_name", "family_name", "birth_date", "gender", "postcode", "address", "phone",
}

func (f Field) String() string { return fieldNames[f] }

// Agreement is the explanation of one candidate: a level per field, in the
// lookup request's field names.
type Agreement struct {
	NHSNumber  Level `json:"nhs_number"`
	GivenName  Level `json:"given_name"`
	FamilyName Level `json:"family_name"`
	BirthDate  Level `json:"birth_date"`
	Gender     Level `json:"gender"`
	Postcode   Level `json:"postcode"`
	Address    Level `json:"address"`
	Phone      Level `json:"phone"`

	// givenConflict: the first given names agree but the caller's second
	// given name plainly differs from the plan holder's (see Anchored).
	givenConflict bool
	// givenUnrecorded: the caller gave a given name and the plan has none:
	// missing, but not for want of the caller's saying (see Anchored).
	givenUnrecorded bool
	// otherHouse: the caller gave another house number on the plan
	// holder's street, not a slip of it (see corroborated).
	otherHouse bool
	// postcodeElsewhere: the caller's full postcode is in the plan
	// holder's district but is not theirs (OutwardOnly from two full
	// postcodes; see corroborated).
	postcodeElsewhere bool
	// otherStreet: the caller's address is on another street, with
	// another house number (see corroborated).
	otherStreet bool
	// communal: the plan holder's home (or the caller's address) is a
	// care or nursing home, whose residents share postcode, address and
	// phone (see corroborated).
	communal bool
	// otherFlat: the caller gave the plan holder's building (house and
	// street, or the postcode with no number) but another flat in it
	// (see corroborated).
	otherFlat bool
	// placeholderDate: both birth dates are 1 January (see corroborated).
	placeholderDate bool
}

// Level returns the level of field f.
func (a *Agreement) Level(f Field) Level {
	switch f {
	case FieldNHSNumber:
		return a.NHSNumber
	case FieldGivenName:
		return a.GivenName
	case FieldFamilyName:
		return a.FamilyName
	case FieldBirthDate:
		return a.BirthDate
	case FieldGender:
		return a.Gender
	case FieldPostcode:
		return a.Postcode
	case FieldAddress:
		return a.Address
	default:
		return a.Phone
	}
}
