package careplanclient

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// LinkClockSkew is how far apart the clocks of the replicas that verify
// links may be: a used link's mark outlives the link's expiry by this much,
// so that a replica whose clock is behind, and which still takes the link
// for unexpired, finds the mark.
const LinkClockSkew = 5 * time.Minute

func usedKey(id string) string { return "{planflag:links}:used:" + id }

// SingleUse enforces that a link opens its plan once, across every
// platform replica, by recording used link IDs in Redis until the links
// expire.
type SingleUse struct {
	RDB *redis.Client
}

// Redeem records c's link as used; a second call for the same link is
// ErrReused. A Redis failure is an error: the caller refuses the link
// rather than let it be reused.
func (s *SingleUse) Redeem(ctx context.Context, c Claims, now time.Time) error {
	// Never 0 or less: go-redis would store the mark without expiry.
	ttl := max(c.Expires.Sub(now), 0) + LinkClockSkew
	ok, err := s.RDB.SetNX(ctx, usedKey(c.ID), 1, ttl).Result()
	if err != nil {
		return fmt.Errorf("single-use check: %w", err)
	}
	if !ok {
		return ErrReused
	}
	return nil
}
