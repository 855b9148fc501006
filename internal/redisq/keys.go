package redisq

// Keys are the Redis keys of one queue. Every key of a queue carries the queue name as a
// hash tag ("{email}"), so the keys of one queue live in one Redis Cluster slot and a Lua
// script may touch several of them. Every key starts with the prefix, so an ACL user
// limited to "~<prefix>:*" reaches all of them.
type Keys struct {
	base string // "<prefix>:{<queue>}:"
}

// QueueKeys returns the keys of queue under prefix.
func QueueKeys(prefix, queue string) Keys {
	return Keys{base: prefix + ":{" + queue + "}:"}
}

// Stream is the stream of ready tasks, read through the consumer group.
func (k Keys) Stream() string { return k.base + "stream" }

// Delayed is the sorted set of tasks waiting for a time (Delay, At, retry backoff):
// score is the due time in Unix milliseconds, member the envelope.
func (k Keys) Delayed() string { return k.base + "delayed" }

// Retry is the sorted set of tasks waiting for a retry backoff, as Delayed is for Delay
// and At: apart, so that the inspector counts each with ZCARD. The promoter drains both.
func (k Keys) Retry() string { return k.base + "retry" }

// Paused is the string whose presence pauses the queue: workers fetch no new entries.
func (k Keys) Paused() string { return k.base + "paused" }

// Meta is the hash in which the queue's workers record the options others need to see,
// such as the dead-letter retention (MetaDeadMaxCount, MetaDeadMaxAge).
func (k Keys) Meta() string { return k.base + "meta" }

// Tick is the hash through which the lease scripts tell a stall of Redis from the death
// of a worker (see TickSeen).
func (k Keys) Tick() string { return k.base + "tick" }

// Notify is a short stream that gets an element whenever an entry is added to Stream:
// a worker blocks on it, not on Stream, so that it never reads an entry before its
// size is checked (see Broker.Fetch).
func (k Keys) Notify() string { return k.base + "notify" }

// Schemas is the hash of the argument schemas the queue's producers wrote: fingerprint
// (Def.Schema) to canonical description (Def.Wire), so that a worker of another version
// can tell what an envelope holds (see Broker.Schema).
func (k Keys) Schemas() string { return k.base + "schemas" }

// Entries is the hash that maps each stream entry on which a delivery began to the id of
// its task, from the start of the delivery until it is settled. A delivery whose entry
// was deleted from the stream (XTRIM, XDEL) has no other trace of its task: this is how
// a worker finds the task of such an entry when the consumer that held it died (see
// reclaimScript).
func (k Keys) Entries() string { return k.base + "entries" }

// Dead is the dead-letter stream.
func (k Keys) Dead() string { return k.base + "dead" }

// State is the hash holding one task's state, attempt, error and result.
func (k Keys) State(id string) string { return k.base + "task:" + id }

// Done is the list that receives one element when a task that a Result waits on
// finishes (see Broker.WatchState); Result blocks on it. A task nobody waits on has none.
func (k Keys) Done(id string) string { return k.base + "done:" + id }

// Unique is the key that holds the id of the task of kind submitted with a uniqueness key.
// The kind is part of it: two kinds of one queue using the same key do not collide.
func (k Keys) Unique(kind, key string) string { return k.base + "unique:" + kind + ":" + key }

// Registry is the set of every queue's name under prefix, written by workers at start
// and by clients on their first submit to a queue. It has no hash tag of a queue: it is
// one key in a slot of its own, written only by single-key commands.
func Registry(prefix string) string { return prefix + ":queues" }
