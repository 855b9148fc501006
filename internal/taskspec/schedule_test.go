package taskspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/taskspec"
)

func TestSchedulesAreReadInUTCUnlessZoned(t *testing.T) {
	from := time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("the test needs the time zone database: %v", err)
	}
	for _, c := range []struct {
		spec string
		want time.Time
	}{
		{"0 6 * * *", time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 3, 1, 5, 15, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Paris 0 7 * * *", time.Date(2026, 3, 1, 7, 0, 0, 0, paris)},
		{"TZ=Europe/Paris @daily", time.Date(2026, 3, 2, 0, 0, 0, 0, paris)},
		{"@every 90s", time.Date(2026, 3, 1, 5, 1, 30, 0, time.UTC)},
		{"@every 1s", from.Add(time.Second)},
	} {
		s, err := taskspec.ParseSchedule(c.spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", c.spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(c.want) {
			t.Errorf("ParseSchedule(%q).Next(%s) = %s, want %s", c.spec, from, got, c.want)
		}
	}
}

func TestEveryTicksOnMultiplesOfItsDuration(t *testing.T) {
	s, err := taskspec.ParseSchedule("@every 10s")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, want int64 }{{0, 10}, {9, 10}, {10, 20}, {-1, 0}, {-10, 0}, {-11, -10}} {
		if got := s.Next(time.Unix(c.from, 0)).Unix(); got != c.want {
			t.Errorf("Next(%d) = %d, want %d", c.from, got, c.want)
		}
	}
	if got := s.Next(time.Unix(3, 500)).Unix(); got != 10 {
		t.Errorf("Next(3.0000005) = %d, want 10", got)
	}
}

func TestBadSchedulesSayWhatIsValid(t *testing.T) {
	for _, spec := range []string{
		"", " ", "0 6 * *", "0 6 * * * *", "61 * * * *", "@fortnightly", "@every", "@every 500ms",
		"@every 1.5s", "@every -1s", "@every soon", "TZ=UTC", "CRON_TZ= 0 6 * * *", "TZ=Mars/Olympus 0 6 * * *",
		"TZ=UTC @every 1m", " 0 6 * * *", "* * * * * ?",
	} {
		err := taskspec.CheckSchedule(spec)
		if err == nil || !strings.Contains(err.Error(), taskspec.ScheduleSyntax) {
			t.Errorf("CheckSchedule(%q) = %v, want an error describing the syntax", spec, err)
		}
	}
}
