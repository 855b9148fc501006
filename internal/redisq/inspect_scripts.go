package redisq

// The scripts of the inspector's actions. They follow the rules of scripts.go: every key
// in KEYS, all of one queue's slot; types checked before the first write; times from
// Redis.

// cancelTaskScript cancels a task. A running one gets a cancel request (FieldCancel,
// holding the MAC of its canceled outcome), which its worker's heartbeat passes on; any
// other ends canceled now: it leaves the set it waits in, or the stream when its entry is
// not yet delivered (a delivered entry stays, and its start removes it unrun, as it
// removes one whose entry was not found), and Result waiters are woken.
//
//	KEYS[1] state   KEYS[2] done   KEYS[3] the set it waits in, or the stream   KEYS[4] stream
//	ARGV[1] the state it must still be in   ARGV[2] its member, or its stream entry ('': not known)
//	ARGV[3] the set's name ('': none)   ARGV[4] outcome MAC   ARGV[5] ttl ms   ARGV[6] group
//
// Returns 1 when done, 0 when the task is no longer in that state or place.
var cancelTaskScript = script(`
local bad = check({{KEYS[1], 'hash', 'none'}, {KEYS[2], 'list', 'none'}, {KEYS[4], 'stream', 'none'}})
if bad then return bad end
local st = redis.call('HGET', KEYS[1], $f_state)
if st ~= ARGV[1] then return 0 end
if st == $s_running then
  redis.call('HSET', KEYS[1], $f_cancel, ARGV[4])
  return 1
end
if ARGV[3] ~= '' then
  bad = check({{KEYS[3], 'zset', 'none'}})
  if bad then return bad end
  if redis.call('ZREM', KEYS[3], ARGV[2]) == 0 then return 0 end
elseif ARGV[2] ~= '' then
  local p = redis.pcall('XPENDING', KEYS[4], ARGV[6], ARGV[2], ARGV[2], 1)
  if p.err or #p == 0 then redis.call('XDEL', KEYS[4], ARGV[2]) end
end
local now = now_ms()
redis.call('HDEL', KEYS[1], $f_cancel, $f_result)
redis.call('HSET', KEYS[1], $f_state, $s_canceled, $f_reason, $s_canceled, $f_error, $cancel_message,
  $f_finished, now, $f_mac, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
signal_done(KEYS[1], KEYS[2], ARGV[5])
return 1
`)

// deleteTaskScript removes a task that is not running: its state and done list, the
// member or entry where it waits (its dead letter, for a dead task), and its unique key
// while that still names it.
//
//	KEYS[1] state   KEYS[2] done   KEYS[3] the set it waits in, the stream or the dead-letter stream
//	KEYS[4] stream  KEYS[5] unique key (optional)
//	ARGV[1] the state it must still be in   ARGV[2] its member or entry ('': none)
//	ARGV[3] the set's name ('': none)   ARGV[4] group   ARGV[5] task id
//
// Returns 1 when deleted, 0 when the task is no longer in that state or place, -1 when it
// runs (or its entry was delivered to a worker that is about to run it).
var deleteTaskScript = script(`
local bad = check({{KEYS[1], 'hash', 'none'}, {KEYS[2], 'list', 'none'}, {KEYS[4], 'stream', 'none'}})
if bad then return bad end
if #KEYS == 5 then
  bad = check({{KEYS[5], 'string', 'none'}})
  if bad then return bad end
end
local st = redis.call('HGET', KEYS[1], $f_state)
if st == $s_running then return -1 end
if st ~= ARGV[1] then return 0 end
if ARGV[3] ~= '' then
  bad = check({{KEYS[3], 'zset', 'none'}})
  if bad then return bad end
  if redis.call('ZREM', KEYS[3], ARGV[2]) == 0 then return 0 end
elseif st == $s_dead and ARGV[2] ~= '' then
  bad = check({{KEYS[3], 'stream', 'none'}})
  if bad then return bad end
  redis.call('XDEL', KEYS[3], ARGV[2])
elseif st == $s_pending and ARGV[2] ~= '' then
  local p = redis.pcall('XPENDING', KEYS[4], ARGV[4], ARGV[2], ARGV[2], 1)
  if not p.err and #p > 0 then return -1 end
  redis.call('XDEL', KEYS[4], ARGV[2])
end
if #KEYS == 5 and redis.call('GET', KEYS[5]) == ARGV[5] then redis.call('DEL', KEYS[5]) end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

// resumeScript ends a pause and adds an element to the notify stream, so that workers
// blocked on it read at once.
//
//	KEYS[1] paused   KEYS[2] notify
var resumeScript = script(`
local bad = check({{KEYS[1], 'string', 'none'}, {KEYS[2], 'stream', 'none'}})
if bad then return bad end
redis.call('DEL', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100, '*', $env, '')
return 1
`)
