package careplanclient

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

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
	ttl := c.Expires.Sub(now) + time.Minute
	ok, err := s.RDB.SetNX(ctx, "{planflag:links}:used:"+c.ID, 1, ttl).Result()
	if err != nil {
		return fmt.Errorf("single-use check: %w", err)
	}
	if !ok {
		return ErrReused
	}
	return nil
}
