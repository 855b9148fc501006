package taskvet_test

import (
	"testing"

	"github.com/taskgen/taskgen/taskvet"
	"golang.org/x/tools/go/analysis/analysistest"
)

// TestFindings checks every finding and every read that must not be reported, each on
// its line in testdata/src/welcome, with the getter and the state type that package
// uses configured by flag.
func TestFindings(t *testing.T) {
	setFlag(t, "ambient", "example.com/auth.FromContext")
	setFlag(t, "state", "example.com/store.Pool")
	analysistest.Run(t, analysistest.TestData(), taskvet.Analyzer, "welcome")
}

// TestDefaultsOnly checks that without flags only the default state types are reported:
// a getter or a type is ambient because the flags say so.
func TestDefaultsOnly(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), taskvet.Analyzer, "plain")
}

func TestFlagsRefuseNamesWithoutAPackage(t *testing.T) {
	for _, bad := range []string{"FromContext", "example.com/auth", "example.com/auth.", ".FromContext", "example.com/auth.From-Context"} {
		if err := taskvet.Analyzer.Flags.Set("ambient", bad); err == nil {
			t.Errorf("-ambient %s: no error; want one, the name would match nothing", bad)
		}
	}
	setFlag(t, "ambient", "example.com/auth.FromContext, example.com/tenant.Current")
	if got, want := taskvet.Analyzer.Flags.Lookup("ambient").Value.String(), "example.com/auth.FromContext,example.com/tenant.Current"; got != want {
		t.Errorf("-ambient = %q, want %q", got, want)
	}
}

// setFlag sets one of the analyzer's flags for the test, and clears it afterwards.
func setFlag(t *testing.T, name, value string) {
	t.Helper()
	if err := taskvet.Analyzer.Flags.Set(name, value); err != nil {
		t.Fatalf("-%s %s: %v", name, value, err)
	}
	t.Cleanup(func() {
		if err := taskvet.Analyzer.Flags.Set(name, ""); err != nil {
			t.Errorf("clear -%s: %v", name, err)
		}
	})
}
