package feed

import (
	"time"

	"github.com/planflag/planflag/matcher"
)

// Event types of the plan-store contract (DESIGN.md).
const (
	TypeUpserted  = "plan.upserted"
	TypeWithdrawn = "plan.withdrawn"
)

// Event is one plan-store event: the Kafka value, or one line of a .jsonl file.
type Event struct {
	Type       string           `json:"type"`
	PlanID     string           `json:"plan_id"`
	Version    uint64           `json:"version"`
	OccurredAt time.Time        `json:"occurred_at"`
	Patient    *matcher.Patient `json:"patient,omitempty"`
	// Ignored names a malformed field a withdrawal was applied without
	// (a withdrawal needs only its type, plan_id and version); "" if none.
	Ignored string `json:"-"`
}
