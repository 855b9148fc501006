package taskctl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// Keys are the signing, retired and seal keys taskctl gives its inspector: signing keys
// verify signatures and re-sign on requeue (the first signs), retired keys only verify
// until their date, and the seal key opens sealed caller blocks (their user id, scopes
// and expiry; taskctl never shows a token).
type Keys struct {
	Signing []NamedKey
	Retired []NamedKey
	Seal    []byte
}

// NamedKey is a key under its key id; Retired is set for a retired key.
type NamedKey struct {
	ID      string
	Secret  []byte
	Retired time.Time
}

// Options returns the inspector options for k.
func (k Keys) Options() []task.Option {
	var opts []task.Option
	for _, s := range k.Signing {
		opts = append(opts, task.WithSigningKey(s.ID, s.Secret))
	}
	for _, r := range k.Retired {
		opts = append(opts, task.WithRetiredKey(r.ID, r.Secret, r.Retired))
	}
	if k.Seal != nil {
		opts = append(opts, task.WithSealKey(k.Seal))
	}
	return opts
}

// loadKeys reads the keys from the keys file when one is named, else from the environment.
// Both at once is refused: which one wins would be a guess.
func (e *env) loadKeys() (Keys, error) {
	fromEnv := e.getenv(EnvSigningKeys) != "" || e.getenv(EnvSealKey) != "" || e.getenv(EnvRetiredKeys) != ""
	if e.keysFile != "" {
		if fromEnv {
			return Keys{}, usagef("keys are given both in a keys file (%s) and in the environment (%s, %s, %s): give them one way", e.keysFile, EnvSigningKeys, EnvSealKey, EnvRetiredKeys)
		}
		return LoadKeysFile(e.keysFile)
	}
	var k Keys
	var err error
	if k.Signing, err = parseKeyList(EnvSigningKeys, e.getenv(EnvSigningKeys), false); err != nil {
		return Keys{}, err
	}
	if k.Retired, err = parseKeyList(EnvRetiredKeys, e.getenv(EnvRetiredKeys), true); err != nil {
		return Keys{}, err
	}
	if s := e.getenv(EnvSealKey); s != "" {
		if k.Seal, err = decodeKey(EnvSealKey, s); err != nil {
			return Keys{}, err
		}
	}
	return k, nil
}

// parseKeyList parses "id:base64,id:base64" (with retired, "id:base64:RFC3339,...").
func parseKeyList(name, list string, retired bool) ([]NamedKey, error) {
	var keys []NamedKey
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		want := "id:base64"
		if retired {
			want = "id:base64:2006-01-02T15:04:05Z"
		}
		// An RFC 3339 date holds colons of its own: id, key, then the rest is the date.
		if len(parts) < 2 || (retired && len(parts) < 3) || (!retired && len(parts) != 2) || parts[0] == "" {
			return nil, usagef("%s: an entry is not %s (entries are separated by commas)", name, want)
		}
		k := NamedKey{ID: parts[0]}
		var err error
		if k.Secret, err = decodeKey(name+" key "+k.ID, parts[1]); err != nil {
			return nil, err
		}
		if retired {
			if k.Retired, err = time.Parse(time.RFC3339, strings.Join(parts[2:], ":")); err != nil {
				return nil, usagef("%s key %s: the retirement date is not RFC 3339 (2006-01-02T15:04:05Z)", name, k.ID)
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeKey decodes a standard base64 key. The error never quotes the value.
func decodeKey(what, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, usagef("%s is not standard base64 (encode the raw key bytes, e.g. with base64 -w0)", what)
	}
	if len(b) == 0 {
		return nil, usagef("%s is empty", what)
	}
	return b, nil
}

// LoadKeysFile reads a keys file: one key a line, blank lines and lines starting with #
// ignored.
//
//	signing ID BASE64             a signing key; the first one listed signs
//	retired ID BASE64 RFC3339     a key that verifies until the date, never signs
//	seal BASE64                   the seal key (task.WithSealKey), when the deployment has one
//
// The file must be readable by its owner only (mode 0600 or 0400): like ssh with a private
// key, taskctl refuses a file that others could read, saying so.
func LoadKeysFile(path string) (Keys, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Keys{}, usagef("keys file: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return Keys{}, usagef("keys file %s is readable by others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Keys{}, usagef("keys file: %v", err)
	}
	var k Keys
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		where := fmt.Sprintf("%s:%d", path, n)
		switch {
		case f[0] == "signing" && len(f) == 3:
			s, err := decodeKey(where+": signing key "+f[1], f[2])
			if err != nil {
				return Keys{}, err
			}
			k.Signing = append(k.Signing, NamedKey{ID: f[1], Secret: s})
		case f[0] == "retired" && len(f) == 4:
			s, err := decodeKey(where+": retired key "+f[1], f[2])
			if err != nil {
				return Keys{}, err
			}
			at, err := time.Parse(time.RFC3339, f[3])
			if err != nil {
				return Keys{}, usagef("%s: the retirement date of key %s is not RFC 3339 (2006-01-02T15:04:05Z)", where, f[1])
			}
			k.Retired = append(k.Retired, NamedKey{ID: f[1], Secret: s, Retired: at})
		case f[0] == "seal" && len(f) == 2:
			if k.Seal != nil {
				return Keys{}, usagef("%s: a second seal key; a deployment has one", where)
			}
			if k.Seal, err = decodeKey(where+": seal key", f[1]); err != nil {
				return Keys{}, err
			}
		default:
			return Keys{}, usagef("%s: expected \"signing ID BASE64\", \"retired ID BASE64 RFC3339\" or \"seal BASE64\" (the line is not shown: it may hold a key)", where)
		}
	}
	return k, nil
}
