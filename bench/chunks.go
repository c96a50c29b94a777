package bench

import (
	"strconv"

	"github.com/planflag/planflag/matcher"
)

// ChunkPlans is the most plans GenerateChunks generates at once.
const ChunkPlans = 1_000_000

// GenerateChunks generates a synthetic plan store of cfg.Plans plan holders
// as populations of at most ChunkPlans, with seeds cfg.Seed, cfg.Seed+1, …,
// and hands each in turn to use with its events as index changes, so that
// an index far larger than one population (the 10,000,000 identities
// DESIGN.md sizes one replica for) can be built while the generator's
// people, events and queries never hold more than one chunk. Plan IDs of
// the chunks after the first are prefixed "C<chunk>-" so that they differ
// from the first's; cfg.Queries callers come from the first chunk only.
// The synthetic set has 30,000 real postcodes whatever its size, so a large
// one is far denser per postcode than the UK.
func GenerateChunks(cfg Config, use func(chunk int, ds *Dataset, changes []matcher.Change) error) error {
	seed, queries := cfg.Seed, cfg.Queries
	for chunk, left := 0, cfg.Plans; left > 0; chunk, left = chunk+1, left-ChunkPlans {
		c := cfg
		c.Seed = seed + uint64(chunk)
		c.Plans = min(left, ChunkPlans)
		c.Queries = 0
		if chunk == 0 {
			c.Queries = queries
		}
		ds, err := Generate(c)
		if err != nil {
			return err
		}
		changes := make([]matcher.Change, len(ds.Events))
		for i := range ds.Events {
			changes[i] = ds.Events[i].Change()
			if chunk > 0 {
				changes[i].PlanID = "C" + strconv.Itoa(chunk) + "-" + changes[i].PlanID
			}
		}
		if err := use(chunk, ds, changes); err != nil {
			return err
		}
	}
	return nil
}
