package envelope

import (
	"encoding/json"
	"unicode/utf8"
)

// maxJSONDepth is encoding/json's limit on nesting, which compactJSON enforces.
const maxJSONDepth = 10000

// isCompactJSON reports whether raw is exactly what compactJSON writes for it: one
// valid JSON value (as encoding/json's scanner reads JSON, nested at most maxJSONDepth
// deep), valid UTF-8, no whitespace outside strings, and in strings none of the
// characters json.Marshal escapes in a json.RawMessage: '<', '>', '&', U+2028 and
// U+2029. It allocates nothing, so that Sign and Open check args and caller blocks
// without re-marshalling them; FuzzCompactJSON holds it to compactJSON.
func isCompactJSON(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	v := jsonChecker{b: raw}
	return v.value(0) && v.i == len(raw)
}

type jsonChecker struct {
	b []byte
	i int
}

func (v *jsonChecker) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{' || c == '[':
		if depth+1 > maxJSONDepth {
			return false
		}
		return v.container(c, depth+1)
	case c == '"':
		return v.str()
	case c == '-' || c >= '0' && c <= '9':
		return v.number()
	case c == 't':
		return v.lit("true")
	case c == 'f':
		return v.lit("false")
	case c == 'n':
		return v.lit("null")
	}
	return false
}

func (v *jsonChecker) container(open byte, depth int) bool {
	end := byte(']')
	if open == '{' {
		end = '}'
	}
	v.i++ // the opening bracket
	if v.i < len(v.b) && v.b[v.i] == end {
		v.i++
		return true
	}
	for {
		if open == '{' {
			if v.i >= len(v.b) || v.b[v.i] != '"' || !v.str() || v.i >= len(v.b) || v.b[v.i] != ':' {
				return false
			}
			v.i++
		}
		if !v.value(depth) || v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case end:
			v.i++
			return true
		default:
			return false
		}
	}
}

func (v *jsonChecker) lit(s string) bool {
	if len(v.b)-v.i < len(s) || string(v.b[v.i:v.i+len(s)]) != s {
		return false
	}
	v.i += len(s)
	return true
}

func (v *jsonChecker) digits() int {
	n := 0
	for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
		v.i++
		n++
	}
	return n
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (v *jsonChecker) number() bool {
	if v.b[v.i] == '-' {
		v.i++
	}
	if v.i < len(v.b) && v.b[v.i] == '0' {
		v.i++
	} else if v.digits() == 0 {
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if v.digits() == 0 {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if v.digits() == 0 {
			return false
		}
	}
	return true
}

func hexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// str reads a string at v.i, which holds '"'; the input is valid UTF-8 (isCompactJSON
// checked it), so U+2028 and U+2029 are their three-byte sequences.
func (v *jsonChecker) str() bool {
	for v.i++; v.i < len(v.b); v.i++ {
		switch c := v.b[v.i]; {
		case c == '"':
			v.i++
			return true
		case c == '\\':
			v.i++
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(v.b)-v.i < 5 || !hexDigit(v.b[v.i+1]) || !hexDigit(v.b[v.i+2]) || !hexDigit(v.b[v.i+3]) || !hexDigit(v.b[v.i+4]) {
					return false
				}
				v.i += 4
			default:
				return false
			}
		case c < 0x20, c == '<', c == '>', c == '&':
			return false
		case c == 0xe2 && v.i+2 < len(v.b) && v.b[v.i+1] == 0x80 && (v.b[v.i+2] == 0xa8 || v.b[v.i+2] == 0xa9):
			return false // U+2028, U+2029
		}
	}
	return false
}

// canonicalRaw returns raw as compactJSON writes it: raw itself when it already is, so
// that the common case allocates nothing.
func canonicalRaw(name string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || isCompactJSON(raw) {
		return raw, nil
	}
	return compactJSON(name, raw)
}
