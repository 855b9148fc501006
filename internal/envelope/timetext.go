package envelope

import "time"

// parseUTC reads the text json.Marshal writes for a UTC time.Time that has no monotonic
// reading, and only that: "YYYY-MM-DDTHH:MM:SSZ", or with a fraction of 1 to 9 digits
// after the seconds that does not end in 0 (RFC3339Nano's shortest form), with a day
// that exists in its month. It does by hand, without allocating, what time.Parse and a
// comparison with time.Time.AppendFormat do; FuzzParseUTC holds it to them.
func parseUTC(s []byte) (time.Time, bool) {
	const base = len("2006-01-02T15:04:05")
	if len(s) < base+1 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range s[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[base : len(s)-1]; len(frac) > 0 {
		digits := len(frac) - 1
		if frac[0] != '.' || digits < 1 || digits > 9 || frac[digits] == '0' {
			return time.Time{}, false
		}
		n, ok := num(base+1, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 9 - digits {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // time.Date normalizes February 30 to March 2
		return time.Time{}, false
	}
	return t, true
}
