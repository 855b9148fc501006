package taskspec_test

import (
	"strings"
	"testing"

	"github.com/taskgen/taskgen/internal/taskspec"
)

func TestKinds(t *testing.T) {
	for _, kind := range []string{"a", "email.send_welcome", "q.run-2", "0", "a..b", "x_"} {
		if err := taskspec.CheckKind(kind); err != nil {
			t.Errorf("CheckKind(%q) = %v, want nil", kind, err)
		}
	}
	for _, kind := range []string{"", "Email.send", ".a", "_a", "-a", "a b", "a:b", "a/b", "a{b}", "é"} {
		err := taskspec.CheckKind(kind)
		if err == nil || !strings.Contains(err.Error(), taskspec.KindSyntax) {
			t.Errorf("CheckKind(%q) = %v, want an error describing the syntax", kind, err)
		}
	}
}

func TestQueues(t *testing.T) {
	for _, q := range []string{"default", "Email", "a.b", "a-b_c", "0", strings.Repeat("q", taskspec.MaxQueueLen)} {
		if err := taskspec.CheckQueue(q); err != nil {
			t.Errorf("CheckQueue(%q) = %v, want nil", q, err)
		}
	}
	for _, q := range []string{"", "a..b", ".a", "a b", "a:b", "{a}", "a/b", "é", strings.Repeat("q", taskspec.MaxQueueLen+1)} {
		err := taskspec.CheckQueue(q)
		if err == nil || !strings.Contains(err.Error(), taskspec.QueueSyntax) {
			t.Errorf("CheckQueue(%q) = %v, want an error describing the syntax", q, err)
		}
	}
}

func TestNames(t *testing.T) {
	got := taskspec.NamesOf("ShardCompact").All()
	want := []string{"ShardCompactArgs", "ShardCompactTask", "SubmitShardCompact", "SubmitShardCompactMany", "ResultShardCompact"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("NamesOf(ShardCompact).All() = %v, want %v", got, want)
	}
}
