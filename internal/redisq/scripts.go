package redisq

import "github.com/redis/go-redis/v9"

// Every script takes all the keys it touches in KEYS and nothing else there: Redis checks
// KEYS against an ACL user's key patterns and routes Cluster requests by them. Group
// names, ids, payloads and times go in ARGV. All KEYS of one call share the queue's hash tag.
//
// The scripts that settle a delivery (complete, retry, dead, release) act only if their
// XACK acknowledged it: when a worker that lost its lease finishes after another worker
// settled the same entry, the first outcome stands and the late one returns 0.

// enqueueScript adds a task, now or at a time, and records its state.
//
//	KEYS[1] stream   KEYS[2] delayed   KEYS[3] state   KEYS[4] unique (optional)
//	ARGV[1] envelope ARGV[2] task id   ARGV[3] kind    ARGV[4] due ms (0: now)
//	ARGV[5] now ms   ARGV[6] unique ttl ms
//
// Returns {1, id} when enqueued, {0, existing id} when the unique key was already held.
var enqueueScript = redis.NewScript(`
if #KEYS == 4 then
  if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[6]) then
    return {0, redis.call('GET', KEYS[4])}
  end
end
local state = 'pending'
if tonumber(ARGV[4]) > tonumber(ARGV[5]) then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  state = 'scheduled'
else
  redis.call('XADD', KEYS[1], '*', 'env', ARGV[1])
end
redis.call('HSET', KEYS[3], 'state', state, 'kind', ARGV[3], 'attempts', 0, 'submitted_ms', ARGV[5])
return {1, ARGV[2]}
`)

// promoteScript moves due tasks from the delayed set to the stream. ZREM and XADD happen
// in one script, so two workers promoting at once never deliver a task twice.
//
//	KEYS[1] delayed   KEYS[2] stream
//	ARGV[1] now ms    ARGV[2] max tasks to move
//
// Returns the number of tasks moved.
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, env in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'env', env)
  redis.call('ZREM', KEYS[1], env)
end
return #due
`)

// startScript records that an attempt of a task starts, unless the task has finished
// already: the delivery is then a duplicate (an envelope copied back into the stream, or
// an entry another worker settled while this one took it over) and is removed unrun, so
// a finished task's outcome is never reopened. A missing state (expired, or an entry
// written past the client) is not recreated: only the scripts that finish a task write a
// state that has a TTL.
//
//	KEYS[1] stream   KEYS[2] state
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] attempt
//
// Returns 1 when the attempt may run, 0 when the task had finished.
var startScript = redis.NewScript(`
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'succeeded' or state == 'dead' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  return 0
end
if state then
  redis.call('HSET', KEYS[2], 'state', 'running', 'attempts', ARGV[3])
end
return 1
`)

// heartbeatScript renews the lease of the entries a consumer still holds, and only those:
// an entry another worker took over (this one stalled past its lease) stays with that
// worker instead of being claimed back, so one entry never has two live runners.
//
//	KEYS[1] stream
//	ARGV[1] group    ARGV[2] consumer   ARGV[3...] entry ids
//
// Returns the entry ids the consumer no longer holds.
var heartbeatScript = redis.NewScript(`
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
`)

// completeScript records a successful attempt and wakes Result waiters.
//
//	KEYS[1] stream   KEYS[2] state    KEYS[3] done
//	ARGV[1] group    ARGV[2] entry id ARGV[3] result JSON  ARGV[4] ttl ms
//	ARGV[5] attempt  ARGV[6] now ms
var completeScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], 'error', 'reason')
redis.call('HSET', KEYS[2], 'state', 'succeeded', 'result', ARGV[3], 'attempts', ARGV[5], 'finished_ms', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], 'done')
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 1
`)

// retryScript schedules the next attempt of a failed task.
//
//	KEYS[1] stream   KEYS[2] delayed  KEYS[3] state
//	ARGV[1] group    ARGV[2] entry id ARGV[3] next envelope  ARGV[4] due ms
//	ARGV[5] attempt that failed       ARGV[6] error text
var retryScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[3], 'state', 'retrying', 'attempts', ARGV[5], 'error', ARGV[6])
return 1
`)

// deadScript moves a task to the dead-letter stream. With only two keys it is for an entry
// that names no task. With ARGV[11] set, the entry's envelope could not be verified: the
// dead letter names no task, and the state of the task it claims to be (KEYS[3]) records
// the refusal only if that task exists and has not finished, so that its Result ends.
//
//	KEYS[1] stream   KEYS[2] dead     KEYS[3] state (optional)  KEYS[4] done (optional)
//	ARGV[1] group    ARGV[2] entry id ARGV[3] envelope (as received)
//	ARGV[4] reason   ARGV[5] error text  ARGV[6] attempts  ARGV[7] ttl ms  ARGV[8] now ms
//	ARGV[9] task id  ARGV[10] kind    ARGV[11] untrusted ('1' or '')
var deadScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
local id = ARGV[9]
if ARGV[11] == '1' then id = '' end
redis.call('XADD', KEYS[2], '*', 'id', id, 'kind', ARGV[10], 'reason', ARGV[4],
  'error', ARGV[5], 'attempts', ARGV[6], 'failed_ms', ARGV[8], 'env', ARGV[3])
if #KEYS == 4 then
  if ARGV[11] == '1' then
    local state = redis.call('HGET', KEYS[3], 'state')
    if not state or state == 'succeeded' or state == 'dead' then
      return 1
    end
  end
  redis.call('HDEL', KEYS[3], 'result')
  redis.call('HSET', KEYS[3], 'state', 'dead', 'reason', ARGV[4], 'error', ARGV[5],
    'attempts', ARGV[6], 'finished_ms', ARGV[8])
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[3], 'kind', ARGV[10]) end
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  redis.call('DEL', KEYS[4])
  redis.call('RPUSH', KEYS[4], 'done')
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
return 1
`)

// requeueScript moves a dead letter back to the stream for a fresh run under the same
// task id, once: a second requeue of the same entry finds it gone and returns 0.
//
//	KEYS[1] dead     KEYS[2] stream   KEYS[3] state   KEYS[4] done
//	ARGV[1] dead-letter entry id      ARGV[2] envelope to enqueue
var requeueScript = redis.NewScript(`
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'env', ARGV[2])
redis.call('HDEL', KEYS[3], 'reason', 'error', 'result', 'finished_ms')
redis.call('HSET', KEYS[3], 'state', 'pending', 'attempts', 0)
redis.call('PERSIST', KEYS[3])
redis.call('DEL', KEYS[4])
return 1
`)

// releaseScript hands a task this worker could not finish (it is shutting down) back to
// the stream at once, with the same envelope, so another worker takes it without
// waiting for the lease to run out and without spending an attempt.
//
//	KEYS[1] stream   KEYS[2] state
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] envelope
var releaseScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[1], '*', 'env', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'pending')
return 1
`)

// pruneScript removes a consumer from the group if, at this instant, it holds no entry.
// Checking and deleting in one script matters: XGROUP DELCONSUMER drops the consumer's
// pending entries, and an entry dropped from the pending list is never delivered again.
//
//	KEYS[1] stream
//	ARGV[1] group    ARGV[2] consumer
var pruneScript = redis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)
