package careplanclient

import (
	"context"
)

// Index is what reconciliation compares the platform with: the matcher's
// index.
type Index interface {
	Version(planID string) (version uint64, live bool)
	EachLive(func(planID string, version uint64))
}

// Drift counts the differences between the platform's live plans and the
// index.
type Drift struct {
	PlatformLive int // live plans on the platform
	IndexLive    int // live plans in the index
	Missing      int // live on the platform, not live in the index: a plan that would be missed
	Behind       int // live in both, the index at an older version
	Extra        int // live in the index, not on the platform: a plan that should not be flagged
}

// Total is the number of differing plans.
func (d Drift) Total() int { return d.Missing + d.Behind + d.Extra }

// Reconcile fetches the platform's live plans and versions and counts how
// the index differs. Plans change while it runs, so a small drift that
// vanishes on the next run is expected; a lasting one is not.
func Reconcile(ctx context.Context, c *Client, ix Index) (Drift, error) {
	var d Drift
	live, err := c.LivePlans(ctx)
	if err != nil {
		return d, err
	}
	d.PlatformLive = len(live)
	for plan, v := range live {
		iv, ok := ix.Version(plan)
		switch {
		case !ok:
			d.Missing++
		case iv < v:
			d.Behind++
		}
	}
	ix.EachLive(func(plan string, _ uint64) {
		d.IndexLive++
		if _, ok := live[plan]; !ok {
			d.Extra++
		}
	})
	return d, nil
}
