package wireschema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a description that does not follow the grammar, at a byte offset.
type SyntaxError struct {
	// Offset is the byte offset in the description where the problem is.
	Offset int
	// Msg says what is wrong there.
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("wire description: offset %d: %s", e.Offset, e.Msg)
}

// maxNesting bounds how deeply descriptions nest, as encoding/json bounds the nesting of
// the values it decodes: far beyond any real type, and it keeps a hostile description
// from exhausting the stack.
const maxNesting = 10000

// Parse parses a description. It is strict: the text must follow the grammar exactly, with
// no spaces, names quoted as strconv.Quote quotes them, each object name once and every
// rec(N) referring to an enclosing composite. Fields may come in any order: the order is
// not part of the wire shape, and String sorts them. A problem is a *SyntaxError at its
// byte offset.
func Parse(desc string) (*Type, error) {
	p := &parser{s: desc}
	t, err := p.desc()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.s) {
		return nil, p.errorf(p.pos, "unexpected %s after the description: a description is one type", p.what(p.pos))
	}
	return t, nil
}

// Canonical returns the canonical form of a description: Parse, then String.
func Canonical(desc string) (string, error) {
	t, err := Parse(desc)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

type parser struct {
	s   string
	pos int
	// depth is the number of composites enclosing the description being parsed.
	depth int
}

func (p *parser) errorf(offset int, format string, args ...any) error {
	return &SyntaxError{Offset: offset, Msg: fmt.Sprintf(format, args...)}
}

// what names the input at offset for a message: a character, or the end.
func (p *parser) what(offset int) string {
	if offset >= len(p.s) {
		return "end of description"
	}
	r, _ := utf8.DecodeRuneInString(p.s[offset:])
	return strconv.QuoteRuneToASCII(r)
}

func (p *parser) peek(prefix string) bool { return strings.HasPrefix(p.s[p.pos:], prefix) }

func (p *parser) expect(token string) error {
	if !p.peek(token) {
		return p.errorf(p.pos, "want %q, found %s", token, p.what(p.pos))
	}
	p.pos += len(token)
	return nil
}

const wantType = "want a type: an object {...}, a basic type such as string or int64, bytes, time, marshaler(T), *T, []T, [N]T, map[K]T or rec(N)"

// desc parses one description.
func (p *parser) desc() (*Type, error) {
	start := p.pos
	if p.pos >= len(p.s) {
		return nil, p.errorf(p.pos, "unexpected end of description: %s", wantType)
	}
	switch p.s[p.pos] {
	case '{':
		return p.composite(func() (*Type, error) { return p.object() })
	case '*':
		p.pos++
		return p.composite(func() (*Type, error) {
			elem, err := p.desc()
			return &Type{Kind: Pointer, Elem: elem}, err
		})
	case '[':
		p.pos++
		if p.peek("]") {
			p.pos++
			return p.composite(func() (*Type, error) {
				elem, err := p.desc()
				return &Type{Kind: Slice, Elem: elem}, err
			})
		}
		n, err := p.number("an array length", 0)
		if err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
		return p.composite(func() (*Type, error) {
			elem, err := p.desc()
			return &Type{Kind: Array, Len: n, Elem: elem}, err
		})
	}
	word := p.word()
	switch {
	case word == "":
		return nil, p.errorf(start, "unexpected %s: %s", p.what(start), wantType)
	case word == "bytes":
		return &Type{Kind: Bytes}, nil
	case word == "time":
		return &Type{Kind: Time}, nil
	case word == "marshaler":
		return p.marshaler(start)
	case word == "map":
		return p.composite(func() (*Type, error) { return p.mapType() })
	case word == "rec":
		return p.rec(start)
	}
	if _, ok := basicNames[word]; ok {
		return &Type{Kind: Basic, Name: word}, nil
	}
	return nil, p.errorf(start, "unknown type %q: %s", word, wantType)
}

// composite parses the inside of a composite description, one level deeper.
func (p *parser) composite(parse func() (*Type, error)) (*Type, error) {
	if p.depth >= maxNesting {
		return nil, p.errorf(p.pos, "descriptions nested more than %d deep: describe a smaller type", maxNesting)
	}
	p.depth++
	defer func() { p.depth-- }()
	t, err := parse()
	if err != nil {
		return nil, err
	}
	return t, nil
}

// word reads the letters and digits at the current position.
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

// number reads a decimal number without leading zeros, at least min.
func (p *parser) number(what string, min int64) (int64, error) {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	digits := p.s[start:p.pos]
	if digits == "" {
		return 0, p.errorf(start, "want %s (a decimal number), found %s", what, p.what(start))
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, p.errorf(start, "%s %s has a leading zero: write it as %s", what, digits, strings.TrimLeft(digits, "0"))
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, p.errorf(start, "%s %s is out of range", what, digits)
	}
	if n < min {
		return 0, p.errorf(start, "%s must be at least %d, not %s", what, min, digits)
	}
	return n, nil
}

// object parses {field,...}; the { is at the current position.
func (p *parser) object() (*Type, error) {
	p.pos++ // {
	t := &Type{Kind: Object}
	seen := map[string]int{}
	if p.peek("}") {
		p.pos++
		return t, nil
	}
	for {
		at := p.pos
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[f.Name]; dup {
			return nil, p.errorf(at, "field %s appears twice (first at offset %d): a JSON object has one value per name", strconv.Quote(f.Name), prev)
		}
		seen[f.Name] = at
		t.Fields = append(t.Fields, f)
		switch {
		case p.peek(","):
			p.pos++
		case p.peek("}"):
			p.pos++
			return t, nil
		default:
			return nil, p.errorf(p.pos, "want \",\" or \"}\" after a field, found %s", p.what(p.pos))
		}
	}
}

// field parses "name",options:desc.
func (p *parser) field() (Field, error) {
	start := p.pos
	if !p.peek(`"`) {
		return Field{}, p.errorf(start, "want a quoted field name such as \"to\", found %s", p.what(start))
	}
	quoted, err := strconv.QuotedPrefix(p.s[p.pos:])
	if err != nil {
		return Field{}, p.errorf(start, "unterminated or malformed field name: quote it as a Go string, such as \"to\"")
	}
	name, _ := strconv.Unquote(quoted)
	if canonical := strconv.Quote(name); canonical != quoted {
		return Field{}, p.errorf(start, "field name %s is not quoted canonically: write %s", quoted, canonical)
	}
	p.pos += len(quoted)
	f := Field{Name: name}
	// The options come in this order, each at most once, as the describer writes them.
	for _, opt := range []struct {
		name string
		set  *bool
	}{{",omitempty", &f.OmitEmpty}, {",omitzero", &f.OmitZero}, {",string", &f.Quoted}} {
		if p.peek(opt.name) {
			p.pos += len(opt.name)
			*opt.set = true
		}
	}
	if !p.peek(":") {
		if p.peek(",") {
			return Field{}, p.errorf(p.pos, "unknown or misplaced field option: the options are ,omitempty ,omitzero ,string, in that order, each once, then \":\" and the type")
		}
		return Field{}, p.errorf(p.pos, "want \":\" and the type of field %s, found %s", quoted, p.what(p.pos))
	}
	p.pos++
	f.Type, err = p.desc()
	return f, err
}

// mapType parses [key]elem after "map".
func (p *parser) mapType() (*Type, error) {
	if err := p.expect("["); err != nil {
		return nil, err
	}
	keyAt := p.pos
	key, err := p.desc()
	if err != nil {
		return nil, err
	}
	if !validKey(key) {
		return nil, p.errorf(keyAt, "map key %s: a JSON object's keys are strings, so a key is string, an integer type or marshaler(T)", key)
	}
	if err := p.expect("]"); err != nil {
		return nil, err
	}
	elem, err := p.desc()
	if err != nil {
		return nil, err
	}
	return &Type{Kind: Map, Key: key, Elem: elem}, nil
}

func validKey(t *Type) bool {
	switch t.Kind {
	case Marshaler:
		return true
	case Basic:
		return t.Name == "string" || basicNames[t.Name].integer
	}
	return false
}

// rec parses (N) after "rec".
func (p *parser) rec(start int) (*Type, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	n, err := p.number("a rec depth", 1)
	if err != nil {
		return nil, err
	}
	if n > int64(p.depth) {
		return nil, p.errorf(start, "rec(%d) refers outside the description: only %d composite type(s) enclose it", n, p.depth)
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return &Type{Kind: Rec, Depth: int(n)}, nil
}

// marshaler parses (T) after "marshaler". T is a Go type as go/types writes it, which may
// hold brackets, parentheses and quoted struct tags: it ends at the ")" that balances
// the opening one, outside quotes.
func (p *parser) marshaler(start int) (*Type, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	nameAt := p.pos
	var open []byte // the closing brackets expected, innermost last
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch c {
		case '"', '`':
			lit, err := strconv.QuotedPrefix(p.s[p.pos:])
			if err != nil {
				return nil, p.errorf(p.pos, "unterminated string in marshaler(...)")
			}
			p.pos += len(lit)
			continue
		case '(':
			open = append(open, ')')
		case '[':
			open = append(open, ']')
		case '{':
			open = append(open, '}')
		case ')', ']', '}':
			if len(open) == 0 {
				if c != ')' {
					return nil, p.errorf(p.pos, "unbalanced %q in marshaler(...)", c)
				}
				name := p.s[nameAt:p.pos]
				if strings.TrimSpace(name) != name || name == "" {
					return nil, p.errorf(nameAt, "want the Go type of the marshaler, such as marshaler(net/netip.Addr), without surrounding spaces")
				}
				p.pos++
				return &Type{Kind: Marshaler, Name: name}, nil
			}
			if open[len(open)-1] != c {
				return nil, p.errorf(p.pos, "unbalanced %q in marshaler(...): want %q", c, open[len(open)-1])
			}
			open = open[:len(open)-1]
		default:
			if c < ' ' || c == 0x7f {
				return nil, p.errorf(p.pos, "control character %s in marshaler(...)", p.what(p.pos))
			}
		}
		p.pos++
	}
	return nil, p.errorf(start, "unterminated marshaler(...): want the Go type and \")\"")
}
