package matcher

// InputError is a lookup field the matcher cannot read. It names the field and
// the problem, never the value, so it is safe to log and to show a client.
type InputError struct {
	Field   string // the lookup request field, e.g. "birth_date"
	Problem string // what is wrong, without the value
}

func (e *InputError) Error() string { return e.Field + ": " + e.Problem }
