package taskspec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduleSyntax describes the schedules a //task: directive's schedule= option and a
// task.Def's Schedule accept, for error messages.
const ScheduleSyntax = `a standard 5-field cron spec "minute hour day-of-month month day-of-week" (such as "0 6 * * *"), ` +
	`or one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, or @every DURATION (whole seconds, at least 1s, such as @every 90s); ` +
	`in UTC unless it starts with CRON_TZ=<IANA zone> or TZ=<IANA zone> and a space`

// Schedule is a parsed schedule: the times its ticks fall on.
type Schedule interface {
	// Next returns the first tick strictly after t.
	Next(t time.Time) time.Time
}

// cronParser is the one parser of schedules: gen validates directives with it and the
// runtime computes ticks with it, so a spec the generator accepted runs as written.
// Five fields and the descriptors; no seconds field: a schedule finer than a minute is
// written @every, whose ticks are aligned (see every).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses spec, the value of a schedule= option, or returns an error saying
// what is wrong and what is valid (ScheduleSyntax).
//
// A cron spec without a CRON_TZ= or TZ= prefix is read in UTC, not in the worker's local
// time zone: workers in several zones, or a machine whose zone changes, must agree on
// when a tick is. A zone name needs the IANA time zone database on the worker (or a
// program that imports time/tzdata).
//
// @every D ticks on the multiples of D since the Unix epoch (every 90s: at 00:00:00,
// 00:01:30, ...), not D after some start: so every worker computes the same tick times,
// and a tick is named by its time alone.
func ParseSchedule(spec string) (Schedule, error) {
	s, err := parseSchedule(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w; a schedule is %s", spec, err, ScheduleSyntax)
	}
	return s, nil
}

// CheckSchedule returns ParseSchedule's error for spec, or nil when it is valid.
func CheckSchedule(spec string) error {
	_, err := ParseSchedule(spec)
	return err
}

func parseSchedule(spec string) (Schedule, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("empty schedule")
	}
	if spec != strings.TrimSpace(spec) {
		return nil, errors.New("leading or trailing space")
	}
	zone := ""
	body := spec
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		prefix, rest, ok := strings.Cut(spec, " ")
		if !ok || strings.TrimSpace(rest) == "" {
			return nil, errors.New("a time zone prefix must be followed by a space and the schedule")
		}
		_, zone, _ = strings.Cut(prefix, "=")
		if zone == "" {
			return nil, errors.New("empty time zone name")
		}
		if _, err := time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("unknown time zone %q: %w", zone, err)
		}
		body = strings.TrimSpace(rest)
	}
	if d, ok := strings.CutPrefix(body, "@every"); ok {
		return parseEvery(strings.TrimSpace(d), zone != "")
	}
	if zone == "" {
		// robfig/cron reads a spec without a zone in time.Local; ours is UTC.
		spec = "CRON_TZ=UTC " + spec
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseEvery parses the duration of an @every schedule.
func parseEvery(d string, zoned bool) (Schedule, error) {
	if zoned {
		return nil, errors.New("@every takes no time zone: its ticks are multiples of its duration since the Unix epoch")
	}
	period, err := time.ParseDuration(d)
	switch {
	case err != nil:
		return nil, fmt.Errorf("@every wants a Go duration such as 90s or 1h: %w", err)
	case period < time.Second || period%time.Second != 0:
		return nil, fmt.Errorf("@every %s: want whole seconds, at least 1s", d)
	}
	return every(period), nil
}

// every is an @every schedule: ticks on the multiples of its duration since the epoch.
type every time.Duration

// Next returns the first multiple of the duration since the Unix epoch after t.
func (e every) Next(t time.Time) time.Time {
	p := int64(e)
	n := t.UnixNano()
	next := (n/p + 1) * p
	if n < 0 && n%p != 0 {
		next -= p
	}
	return time.Unix(0, next).UTC()
}
