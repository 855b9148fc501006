package envelope

// appendCaller appends c, its expiry already in UTC without a monotonic reading (see
// SetCaller), as json.Marshal writes a Caller: user_id always, token, expires_at and
// scopes only when set. FuzzCallerBlock holds it to json.Marshal.
func appendCaller(b []byte, c *Caller) ([]byte, error) {
	b = append(b, `{"user_id":`...)
	b = appendString(b, c.UserID)
	if c.Token != "" {
		b = append(b, `,"token":`...)
		b = appendString(b, c.Token)
	}
	if !c.ExpiresAt.IsZero() {
		var err error
		b = append(b, `,"expires_at":`...)
		if b, err = appendTime(b, "expires_at", c.ExpiresAt); err != nil {
			return nil, err
		}
	}
	if len(c.Scopes) > 0 {
		b = append(b, `,"scopes":[`...)
		for i, s := range c.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// parseCaller reads a caller block that is exactly what appendCaller writes, with its
// expiry in UTC, and reports whether it was. Everything it accepts, the strict decoder
// and canonical check of Caller accept too, with the same value (FuzzCallerBlock); what
// it does not accept goes to them, so it decides nothing, it only saves them the work.
func parseCaller(plain []byte) (*Caller, bool) {
	r := reader{b: plain}
	c := &Caller{}
	r.expect(`{"user_id":`)
	c.UserID = r.str()
	if r.peek(`,"token":`) {
		if c.Token = r.str(); c.Token == "" {
			return nil, false
		}
	}
	if r.peek(`,"expires_at":`) {
		if c.ExpiresAt = r.time(); c.ExpiresAt.IsZero() {
			return nil, false
		}
	}
	if r.peek(`,"scopes":[`) {
		for r.err == nil {
			c.Scopes = append(c.Scopes, r.str())
			if r.peek("]") {
				break
			}
			r.expect(",")
		}
	}
	r.expect("}")
	if r.err != nil || r.i != len(plain) {
		return nil, false
	}
	return c, true
}
