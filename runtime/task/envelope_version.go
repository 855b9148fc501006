package task

import (
	"fmt"

	"github.com/taskgen/taskgen/internal/envelope"
)

// WithEnvelopeVersion sets the envelope format a client writes its tasks in: 1, the
// default of this release, or 2, whose signature covers the envelope's own bytes, so a
// worker checks it before it parses anything and then parses the envelope once (less
// than half the cost of version 1 per task; see BENCHMARKS.md). Workers of this release
// read both whatever they are given; workers of earlier releases read only version 1.
//
// So turn version 2 on in a rolling deploy only once every worker runs this release or
// a later one: workers first, clients after. Only new envelopes take it: a task that is
// retried, requeued or re-signed keeps the version it was written in, so tasks written
// before the switch run as they are.
func WithEnvelopeVersion(version int) Option {
	return Option{func(c *commonConfig) { c.envelope = version }}
}

// writing returns the keyring kr, set to write the envelope version WithEnvelopeVersion
// gave, or err.
func (c *commonConfig) writing(kr *envelope.Keyring, err error) (*envelope.Keyring, error) {
	if err != nil || c.envelope == 0 {
		return kr, err
	}
	kr, err = kr.WritingVersion(c.envelope)
	if err != nil {
		return nil, fmt.Errorf("%w (WithEnvelopeVersion)", err)
	}
	return kr, nil
}
