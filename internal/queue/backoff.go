package queue

import "time"

// Schedule is the retry policy for temporary failures.
type Schedule struct {
	// Min is the wait after the first failure; each further failure
	// doubles it, up to Max. Postfix's minimal and maximal backoff play
	// the same roles.
	Min, Max time.Duration
	// For is how long a message is retried before it is returned to the
	// sender (Exchange Server's MessageExpirationTimeout, 2 days).
	For time.Duration
	// DelayNotice is when the sender is told that delivery is delayed
	// (Exchange Server's DelayNotificationTimeout, 4 hours); 0 never.
	DelayNotice time.Duration
}

// DefaultSchedule retries after 1, 2, 4, ... minutes, at most hourly, for
// two days, with a delay notice after four hours.
var DefaultSchedule = Schedule{Min: time.Minute, Max: time.Hour, For: 48 * time.Hour, DelayNotice: 4 * time.Hour}

// Next returns the wait before the next try after the given number of
// failed attempts (1 after the first failure). The wait varies by ±20%
// (u is uniform in [0, 1)) so that many messages deferred together by one
// outage do not come back in one burst.
func (s Schedule) Next(attempts int, u float64) time.Duration {
	d := s.Min
	for i := 1; i < attempts && d < s.Max; i++ {
		d *= 2
	}
	d = min(d, s.Max)
	jitter := 0.8 + 0.4*u
	return time.Duration(float64(d) * jitter)
}
