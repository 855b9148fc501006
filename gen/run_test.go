package gen

import "testing"

func TestOutputNamesWithAPlatformSuffixAreRefused(t *testing.T) {
	for name, want := range map[string]bool{
		"tasks_gen.go":           false,
		"linux.go":               false,
		"tasks_unix.go":          false, // unix is a build tag, not a file-name suffix
		"tasks_linux.go":         true,
		"tasks_arm64.go":         true,
		"tasks_windows_amd64.go": true,
	} {
		if got := constrainedByName(name); got != want {
			t.Errorf("constrainedByName(%q) = %v, want %v", name, got, want)
		}
		if err := (Config{Output: name}).Validate(); (err != nil) != want {
			t.Errorf("Config{Output: %q}.Validate() = %v, want an error: %v", name, err, want)
		}
	}
}
