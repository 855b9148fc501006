package redisq

import (
	"strconv"
	"strings"
)

// The names Go and the Lua scripts share. Each is written here once: the scripts refer
// to them as $name placeholders that script() replaces, and TestScriptsUseOnlyProtocolNames
// proves that every quoted string left in a script is a Redis command, a key type or one
// of these.

// Group is the consumer group every worker of a queue joins.
const Group = "taskgen"

// EnvelopeField is the stream entry field that holds the envelope.
const EnvelopeField = "env"

// Fields of a task's state hash.
const (
	FieldState     = "state"        // one of the State constants
	FieldKind      = "kind"         // the task kind
	FieldAttempts  = "attempts"     // how many times a worker began the task
	FieldLease     = "lease"        // the fencing token of the newest delivery that began
	FieldOwner     = "owner"        // the consumer that holds the lease
	FieldEntry     = "entry"        // the stream entry of the delivery that holds the lease
	FieldReason    = "reason"       // why the task failed for good
	FieldError     = "error"        // the last error
	FieldResult    = "result"       // the result JSON of a task that succeeded
	FieldDigest    = "digest"       // SHA-1 of the envelope as submitted
	FieldSubmitted = "submitted_ms" // Redis time of the submit
	FieldStarted   = "started_ms"   // Redis time the newest delivery began
	FieldFinished  = "finished_ms"  // Redis time the task finished
	FieldMAC       = "mac"          // the worker's MAC of the final outcome (envelope.Outcome)
	FieldSkewSince = "skew_ms"      // Redis time a worker first handed the task back for a version skew
	FieldBegun     = "begun"        // the newest start call that began the task, and its answer (see startScript)
	// FieldWaiting marks a task that a Result waits on (Broker.WatchState): only then does
	// its end push an element on its done list, so a task nobody waits for leaves no list.
	FieldWaiting = "waiting"
)

// Fields of a task's state hash the inspector reads and writes (see inspect.go).
const (
	FieldDue       = "due_ms"     // the score of the task's member in the delayed or retry set
	FieldHistory   = "history"    // JSON array of the last MaxHistory attempts' errors: [{"n":1,"e":"...","at":ms}]
	FieldCancel    = "cancel"     // a cancel request for a running task: the outcome MAC of its canceled end
	FieldDeadEntry = "dead_entry" // the task's entry in the dead-letter stream
	FieldUnique    = "unique"     // the unique key the task's submit holds, if any
)

// Fields of a queue's meta hash (Keys.Meta).
const (
	MetaDeadMaxCount = "dead_max_count"  // the dead-letter stream's cap on entries its workers apply
	MetaDeadMaxAge   = "dead_max_age_ms" // the dead-letter stream's cap on age, in ms
)

// MaxHistory is how many attempts' errors a task's history keeps, and MaxHistoryError
// the bytes of each error it keeps.
const (
	MaxHistory      = 20
	MaxHistoryError = 512
)

// Fields of a dead-letter entry, besides EnvelopeField and the state fields FieldKind,
// FieldReason, FieldError and FieldAttempts.
const (
	DeadFieldID     = "id"        // the task id; empty when the envelope did not verify
	DeadFieldEntry  = "entry"     // the stream entry that was dead-lettered
	DeadFieldFailed = "failed_ms" // Redis time of the failure
	DeadFieldSize   = "size"      // for an entry too large to read: its size in bytes
	DeadFieldVouch  = "vouch"     // a worker's word that it verified the envelope (envelope.Keyring.Vouch)
)

// MaxDigestSize is the largest entry whose digest a script computes, and that a dead
// letter keeps whole: hashing or copying more would block Redis for too long.
const MaxDigestSize = 16 << 20

// Task states, as stored in FieldState.
const (
	StatePending   = "pending"
	StateScheduled = "scheduled"
	StateRunning   = "running"
	StateRetrying  = "retrying"
	StateSucceeded = "succeeded"
	StateDead      = "dead"
	StateCanceled  = "canceled"
)

// Fields of a queue's tick hash (Keys.Tick), which tells a stall of Redis from the death
// of a worker.
const (
	TickSeen  = "seen"  // Redis time a worker last reached Redis through a lease script
	TickGrace = "grace" // Redis time before which no lease is taken over
	// TickConsumer followed by a consumer's name is the Redis time that consumer last
	// renewed its leases (a heartbeat): what shows it alive while it holds an entry that
	// was deleted from the stream, whose idle time nothing renews any more.
	TickConsumer = "consumer:"
)

// claimPattern is a Lua pattern that captures the task id an envelope claims, from its
// first bytes: envelope.Sign writes the version first and the id second.
const claimPattern = `^{"v":%d+,"id":"([^"\\]+)"`

// Fields of a schedule lock (ScheduleKeys.Lock).
const (
	LockOwner = "owner" // the consumer name of the worker that leads the kind
	LockToken = "token" // its fencing token
)

// Fields of the schedule state hash (ScheduleKeys.State), each followed by the kind.
const (
	ScheduleFieldToken   = "token:"   // the newest fencing token given for the kind's lock
	ScheduleFieldCovered = "covered:" // Redis time (ms) up to which every tick is submitted or skipped
	ScheduleFieldLast    = "last:"    // the newest submitted tick (ms)
	ScheduleFieldLastID  = "last_id:" // the task id of that tick
	ScheduleFieldSpec    = "spec:"    // the schedule its leader runs
	ScheduleFieldQueue   = "queue:"   // the kind's queue
)

// DoneMarker is the element pushed on a task's done list when it finishes.
const DoneMarker = "done"

// protocolNames maps each placeholder the scripts may use to its value.
var protocolNames = map[string]string{
	"group": Group, "env": EnvelopeField, "done": DoneMarker, "id_pattern": claimPattern,
	"f_state": FieldState, "f_kind": FieldKind, "f_attempts": FieldAttempts,
	"f_lease": FieldLease, "f_owner": FieldOwner, "f_entry": FieldEntry,
	"f_reason": FieldReason, "f_error": FieldError, "f_result": FieldResult,
	"f_digest": FieldDigest, "f_submitted": FieldSubmitted, "f_started": FieldStarted,
	"f_finished": FieldFinished, "f_mac": FieldMAC, "f_skew_since": FieldSkewSince, "f_waiting": FieldWaiting,
	"f_begun": FieldBegun,
	"d_size":  DeadFieldSize, "d_vouch": DeadFieldVouch,
	"d_id": DeadFieldID, "d_entry": DeadFieldEntry, "d_failed": DeadFieldFailed,
	"s_pending": StatePending, "s_scheduled": StateScheduled, "s_running": StateRunning,
	"t_seen": TickSeen, "t_grace": TickGrace, "t_consumer": TickConsumer,
	"s_retrying": StateRetrying, "s_succeeded": StateSucceeded, "s_dead": StateDead,
	"l_owner": LockOwner, "l_token": LockToken,
	"sc_token": ScheduleFieldToken, "sc_covered": ScheduleFieldCovered, "sc_last": ScheduleFieldLast,
	"sc_last_id": ScheduleFieldLastID, "sc_spec": ScheduleFieldSpec, "sc_queue": ScheduleFieldQueue,
	"s_canceled": StateCanceled, "f_due": FieldDue, "f_history": FieldHistory, "f_cancel": FieldCancel,
	"f_dead_entry": FieldDeadEntry, "f_unique": FieldUnique, "cancel_message": CancelMessage,
	"max_history": strconv.Itoa(MaxHistory), "max_history_error": strconv.Itoa(MaxHistoryError),
}

// CancelMessage is the error a task canceled by an operator records.
const CancelMessage = "canceled by an operator"

// expand replaces every $name placeholder of src with its protocol name, quoted as a Lua
// string. It panics on an unknown placeholder: that is a typo in a script.
func expand(src string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(src, '$')
		if i < 0 {
			b.WriteString(src)
			return b.String()
		}
		b.WriteString(src[:i])
		j := i + 1
		for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z') {
			j++
		}
		name := src[i+1 : j]
		v, ok := protocolNames[name]
		if !ok {
			panic("redisq: unknown protocol name $" + name + " in a script")
		}
		b.WriteString("'" + v + "'")
		src = src[j:]
	}
}
