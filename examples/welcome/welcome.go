// Package welcome is taskgen's example application: a sign-up endpoint that sends the
// new user a welcome mail from a background worker, on behalf of that user.
//
// The request knows who is calling; the worker knows the mail server. Neither reaches
// the task through ambient state: the handler passes the caller explicitly to
// SubmitSendWelcome, and the worker passes its lifespan state (Deps) to RegisterTasks.
package welcome

//go:generate go run github.com/taskgen/taskgen/cmd/taskgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// Mailer sends mail. The worker owns one for its whole life; tasks get it through Deps.
type Mailer interface {
	Send(ctx context.Context, m Mail) (messageID string, err error)
}

// Mail is one outgoing message, sent with the authority of the user it is for.
type Mail struct {
	To, Subject, Body string
	OnBehalfOf        string
	Auth              task.Secret
}

// Deps is the worker's lifespan state: what the tasks need that is not data.
type Deps struct {
	Mailer Mailer
	From   string
}

// Receipt is what SendWelcome returns, read with the generated ResultSendWelcome.
type Receipt struct {
	MessageID string    `json:"message_id"`
	SentFor   string    `json:"sent_for"`
	SentAt    time.Time `json:"sent_at"`
}

// SendWelcome mails a welcome note to a new user, on behalf of the caller who signed up.
//
//task:email.send_welcome queue=email retries=3 timeout=10s lifespan=deps
func SendWelcome(ctx context.Context, caller task.Caller, deps *Deps, to, name string) (Receipt, error) {
	if caller.Token.Reveal() == "" {
		// Cannot happen for a caller that came through the sign-up handler; fail loudly,
		// and without retries, rather than send unauthenticated mail.
		return Receipt{}, task.Permanent(errors.New("caller has no token"))
	}
	id, err := deps.Mailer.Send(ctx, Mail{
		To: to, Subject: "Welcome, " + name,
		Body:       fmt.Sprintf("Hello %s, welcome aboard.\n-- %s", name, deps.From),
		OnBehalfOf: caller.UserID, Auth: caller.Token,
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("send welcome mail to %s: %w", to, err)
	}
	return Receipt{MessageID: id, SentFor: caller.UserID, SentAt: time.Now().UTC()}, nil
}

// SendDigest mails the weekly digest. Nobody in particular asks for it: it is submitted
// with task.System("digest"), an explicit non-user caller.
//
//task:email.send_digest queue=email retries=1 lifespan=deps
func SendDigest(ctx context.Context, caller task.Caller, deps *Deps, week int, recipients []string) (int, error) {
	for _, to := range recipients {
		if _, err := deps.Mailer.Send(ctx, Mail{To: to, Subject: fmt.Sprintf("Week %d", week), OnBehalfOf: caller.UserID}); err != nil {
			return 0, err
		}
	}
	return len(recipients), nil
}
