package bench

import (
	"strconv"

	"github.com/planflag/planflag/matcher"
)

// ChunkPlans is the most plans GenerateChunks generates at once.
const ChunkPlans = 1_000_000

// GenerateEventChunks generates a synthetic plan store of cfg.Plans plan
// holders as populations of at most ChunkPlans, with seeds cfg.Seed,
// cfg.Seed+1, …, and hands each in turn to use, so that a store far larger
// than one population (the 10,000,000 identities DESIGN.md sizes one
// replica for) can be indexed or published while the generator's people,
// events and queries never hold more than one chunk. The plan IDs of the
// chunks after the first, in their events and holders, are prefixed
// "C<chunk>-" so that they differ from the first's; cfg.Queries callers
// come from the first chunk only. The synthetic set has 30,000 real
// postcodes whatever its size, so a large one is far denser per postcode
// than the UK.
func GenerateEventChunks(cfg Config, use func(chunk int, ds *Dataset) error) error {
	return generateEventChunks(cfg, ChunkPlans, use)
}

func generateEventChunks(cfg Config, size int, use func(chunk int, ds *Dataset) error) error {
	seed, queries := cfg.Seed, cfg.Queries
	for chunk, left := 0, cfg.Plans; left > 0; chunk, left = chunk+1, left-size {
		c := cfg
		c.Seed = seed + uint64(chunk)
		c.Plans = min(left, size)
		c.Queries = 0
		if chunk == 0 {
			c.Queries = queries
		}
		ds, err := Generate(c)
		if err != nil {
			return err
		}
		if chunk > 0 {
			prefix := "C" + strconv.Itoa(chunk) + "-"
			for i := range ds.Events {
				ds.Events[i].PlanID = prefix + ds.Events[i].PlanID
			}
			for _, p := range ds.Holders {
				p.PlanID = prefix + p.PlanID
			}
		}
		if err := use(chunk, ds); err != nil {
			return err
		}
	}
	return nil
}

// GenerateChunks is GenerateEventChunks handing each chunk's events as
// index changes too.
func GenerateChunks(cfg Config, use func(chunk int, ds *Dataset, changes []matcher.Change) error) error {
	return GenerateEventChunks(cfg, func(chunk int, ds *Dataset) error {
		changes := make([]matcher.Change, len(ds.Events))
		for i := range ds.Events {
			changes[i] = ds.Events[i].Change()
		}
		return use(chunk, ds, changes)
	})
}
