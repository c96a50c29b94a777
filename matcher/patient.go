package matcher

// Patient is a plan holder's identifiers as the plan store publishes them
// (DESIGN.md, "Plan-store events"). Every field may be missing or empty; the
// values are raw and are normalised when the plan is indexed.
type Patient struct {
	NHSNumber  string    `json:"nhs_number,omitempty"`
	GivenNames []string  `json:"given_names,omitempty"`
	FamilyName string    `json:"family_name,omitempty"`
	OtherNames []Name    `json:"other_names,omitempty"`
	BirthDate  string    `json:"birth_date,omitempty"` // ISO YYYY-MM-DD
	Gender     string    `json:"gender,omitempty"`     // female, male, other, unknown
	Addresses  []Address `json:"addresses,omitempty"`  // [0] is current, later ones previous
	Phones     []string  `json:"phones,omitempty"`
}

// Name is another name a patient is or was known by.
type Name struct {
	GivenNames []string `json:"given_names,omitempty"`
	FamilyName string   `json:"family_name,omitempty"`
	Use        string   `json:"use,omitempty"` // maiden, alias, previous, ...
}

// Address is a postal address.
type Address struct {
	Lines    []string `json:"lines,omitempty"`
	City     string   `json:"city,omitempty"`
	Postcode string   `json:"postcode,omitempty"`
}

// Query is what a caller gives: the lookup request of DESIGN.md. All fields are
// optional raw strings.
type Query struct {
	NHSNumber  string `json:"nhs_number,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"` // ISO YYYY-MM-DD or UK DD/MM/YYYY
	Gender     string `json:"gender,omitempty"`
	Postcode   string `json:"postcode,omitempty"`
	Address    string `json:"address,omitempty"` // free text, e.g. "14 Elm Rd"
	Phone      string `json:"phone,omitempty"`
}
