package redisq

import "github.com/redis/go-redis/v9"

// Every script takes all the keys it touches in KEYS and nothing else there: Redis checks
// KEYS against an ACL user's key patterns and routes Cluster requests by them. Group
// names, ids, payloads and durations go in ARGV. All KEYS of one call share the queue's
// hash tag.
//
// Three rules hold for every script:
//
//   - A key of the wrong type changes nothing: Redis does not roll back a script that
//     fails half way. So a script checks the type of every key it touches before its
//     first write (prelude's check), or, the enqueue (the hot path, where five TYPE
//     checks cost more than its writes), writes through prelude's try, which undoes
//     the writes before it when one fails; and the hot settle and start scripts check
//     only the keys that neither a read nor their first write meets first (see try).
//   - Times come from Redis (prelude's now_ms), never from the caller: a worker or client
//     whose clock is off moves no due time and no lease.
//   - The scripts that settle a delivery (complete, retry, dead, release) are fenced: they
//     act only while the task's lease token (FieldLease, raised by every start) is the one
//     the settling worker got when its delivery began. A worker that stalled, lost its
//     lease and finished late writes nothing over the new owner's outcome.
//
// Every delivery that begins is recorded in the queue's entries hash (Keys.Entries), from
// its start until a script settles it, so that a task whose stream entry was deleted
// while it ran can still be found (see reclaimScript).

// prelude is prepended to every script.
const prelude = `
local function check(spec)
  for _, s in ipairs(spec) do
    local t = redis.call('TYPE', s[1])['ok']
    local fine = false
    for i = 2, #s do if t == s[i] then fine = true end end
    if not fine then
      return redis.error_reply('WRONGTYPE taskgen: key ' .. s[1] .. ' holds a ' .. t .. ', want ' .. table.concat(s, ' or ', 2))
    end
  end
end
-- try runs a command like redis.pcall, for a script that keeps in undo the commands that
-- take back what it wrote so far. When the command fails, it runs them, newest first, and
-- returns nil and the error to return: for a key of the wrong type, the one check
-- reports; any other as it is (NOGROUP, say, which the callers recognise). A script that
-- reads a key before it writes anything, or writes it first, needs no check of that key:
-- through try, the read or write that meets a key of the wrong type fails before
-- anything was written.
local function try(undo, key, ...)
  local r = redis.pcall(...)
  if type(r) ~= 'table' or not r.err then return r end
  for i = #undo, 1, -1 do redis.call(unpack(undo[i])) end
  if string.sub(r.err, 1, 9) == 'WRONGTYPE' then
    r = redis.error_reply('WRONGTYPE taskgen: key ' .. key .. ' holds a ' .. redis.call('TYPE', key)['ok'])
  end
  return nil, r
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- ready adds env to stream, and an element to notify, which the workers block on, through
-- try: on a key of the wrong type it undoes undo (and its own first write) and returns
-- the error, else nil, with the two entries' removals added to undo.
local function ready(stream, notify, env, undo)
  undo = undo or {}
  local entry, bad = try(undo, stream, 'XADD', stream, '*', $env, env)
  if bad then return bad end
  table.insert(undo, {'XDEL', stream, entry})
  local mark, bad = try(undo, notify, 'XADD', notify, 'MAXLEN', '~', 100, '*', $env, '')
  if bad then return bad end
  table.insert(undo, {'XDEL', notify, mark})
end
-- signal_done wakes the Results waiting on the task of hash state, if any waits: only a
-- waiter marks the hash (watchScript), so a task nobody waits for keeps no done list.
-- wake wakes them, for a script that read the mark itself.
local function wake(done, ttl)
  redis.call('DEL', done)
  redis.call('RPUSH', done, $done)
  redis.call('PEXPIRE', done, ttl)
end
local function signal_done(state, done, ttl)
  if redis.call('HEXISTS', state, $f_waiting) == 1 then wake(done, ttl) end
end
-- remember appends attempt's error to the task's bounded history (FieldHistory), for the
-- inspector: the last MaxHistory attempts, each error cut to MaxHistoryError bytes. A
-- history that does not decode (written outside taskgen) starts over.
local function remember(state, err, now)
  local list = {}
  local h = redis.call('HGET', state, $f_history)
  if h then
    local ok, v = pcall(cjson.decode, h)
    if ok and type(v) == 'table' then list = v end
  end
  local n = tonumber(redis.call('HGET', state, $f_attempts)) or 0
  table.insert(list, {n = n, e = string.sub(err, 1, tonumber($max_history_error)), at = now})
  while #list > tonumber($max_history) do table.remove(list, 1) end
  redis.call('HSET', state, $f_history, cjson.encode(list))
end
-- trim_dead caps a dead-letter stream by count and by age (ms; 0: no cap), approximately:
-- whole macro nodes only, so a trim stays cheap (it may keep a little more than the cap).
local function trim_dead(dead, count, age, now)
  if tonumber(count) > 0 then redis.call('XTRIM', dead, 'MAXLEN', '~', count) end
  if tonumber(age) > 0 then redis.call('XTRIM', dead, 'MINID', '~', now - tonumber(age)) end
end
-- observe records in the queue's tick hash that a worker reached Redis now, and returns
-- the time before which no takeover may happen: one lease after Redis had heard from no
-- worker for longer than half a lease, and at least a second. Redis itself stalled then
-- (or no worker could reach it), and the leases it shows as run out ran out while their
-- workers could not renew them: they get a lease to renew before anyone takes them over.
-- Half a lease: a lease renewed a third of a lease ago runs out in a stall of two thirds,
-- and the workers of a queue reach Redis at least every three eighths of a lease
-- (fetch.go). At least a second, so that with very short leases a worker slowed down for
-- a moment does not hold takeovers back again and again.
local function observe(tick, lease_ms, now)
  local v = redis.call('HMGET', tick, $t_seen, $t_grace)
  local seen, grace = tonumber(v[1]), tonumber(v[2]) or 0
  if seen and now - seen > math.max(lease_ms / 2, 1000) then grace = now + lease_ms end
  redis.call('HSET', tick, $t_seen, now, $t_grace, grace)
  return grace
end
-- silent reports whether consumer has renewed no lease (heartbeatScript records each
-- renewal in the tick hash) for longer than lease_ms by Redis's clock. It is the evidence
-- that a worker died, as the idle time of its pending entries is, for an entry that was
-- deleted from the stream: a heartbeat cannot claim such an entry, so its idle time grows
-- while its worker lives.
local function silent(tick, consumer, lease_ms, now)
  local seen = tonumber(redis.call('HGET', tick, $t_consumer .. consumer))
  return not seen or now - seen > lease_ms
end
-- fence returns 1 when lease is the newest token of the task and the task runs, 0 when
-- another delivery began since (or the task is not running), -1 when it has no record,
-- or the error reply for a state of the wrong type (its read comes first: a script that
-- fences needs no check of the state). Then the values of lease, state and the fields
-- asked for besides.
local function fence(state, lease, ...)
  local v, bad = try({}, state, 'HMGET', state, $f_lease, $f_state, ...)
  if bad then return bad end
  if not v[2] then return -1, v end
  if v[1] == lease and v[2] == $s_running then return 1, v end
  return 0, v
end
`

// sources holds the Lua each script sends, for the test that checks its names.
var sources = map[*redis.Script]string{}

func script(src string) *redis.Script {
	src = expand(prelude + src)
	s := redis.NewScript(src)
	sources[s] = src
	return s
}

// enqueueScript adds a task, now or after a delay, and records its state with the digest
// of its envelope (see deadEntryScript), and its arguments' schema when it is new to the
// queue: in the same script, so no task is ever queued without its schema.
//
//	KEYS[1] stream   KEYS[2] delayed   KEYS[3] state   KEYS[4] notify   KEYS[5] schemas
//	KEYS[6] unique (optional)
//	ARGV[1] envelope ARGV[2] task id   ARGV[3] kind    ARGV[4] delay ms (0: now)
//	ARGV[5] unique ttl ms
//	ARGV[6] '1' when a WAIT or WAITAOF follows on the connection (a durable enqueue)
//	ARGV[7] schema fingerprint   ARGV[8] its description ('': none to record)
//	ARGV[9] the envelope's digest (lower-case hex SHA-1), computed by the client
//
// Returns {1, id} when enqueued, {0, existing id} when the unique key was already held,
// and {0, id} when the task's state exists already.
//
// A task's id is new at every Submit, so a state already there means this very call ran
// before: the client library sent it again after a read timeout or a dropped connection
// (go-redis may retry a pipeline then), not knowing that Redis had run it. Writing again
// would queue a second copy of the task and reset its state to pending, perhaps while a
// worker runs it, so that a second worker could start the copy beside the first. So the
// call writes nothing and answers as if it had.
//
// It runs five commands for a task without unique key or schema to record (HEXISTS,
// XADD, XADD, TIME, HSET): it writes through try, undoing on a key of the wrong type,
// instead of checking five types first. The unique key needs no check: SET NX writes
// nothing on a key that exists, of whatever type, and the GET that follows fails before
// any write.
//
// A durable enqueue that finds the unique key held rewrites it unchanged (same id, same
// TTL), and one that finds the task's state rewrites its kind: WAIT and WAITAOF wait for
// the connection's last write (from Redis 7.2 on, the last command that wrote), and
// without one a fresh connection would count a replica that never received the first
// task as confirming it. The rewrite moves the connection's write past the first task's,
// which was replicated before it.
var enqueueScript = script(`
local undo = {}
local seen, bad = try(undo, KEYS[3], 'HEXISTS', KEYS[3], $f_state)
if bad then return bad end
if seen == 1 then
  if ARGV[6] == '1' then redis.call('HSET', KEYS[3], $f_kind, ARGV[3]) end
  return {0, ARGV[2]}
end
local unique = #KEYS == 6 and KEYS[6]
if unique then
  if not redis.call('SET', unique, ARGV[2], 'NX', 'PX', ARGV[5]) then
    local first, bad = try(undo, unique, 'GET', unique)
    if bad then return bad end
    if ARGV[6] == '1' then redis.call('SET', unique, first, 'KEEPTTL') end
    return {0, first}
  end
  table.insert(undo, {'DEL', unique})
end
if ARGV[8] ~= '' then
  local added, bad = try(undo, KEYS[5], 'HSETNX', KEYS[5], ARGV[7], ARGV[8])
  if bad then return bad end
  if added == 1 then table.insert(undo, {'HDEL', KEYS[5], ARGV[7]}) end
end
local now = now_ms()
local fields = {$f_state, $s_pending, $f_kind, ARGV[3], $f_attempts, 0, $f_submitted, now, $f_digest, ARGV[9]}
if tonumber(ARGV[4]) > 0 then
  local due = now + tonumber(ARGV[4])
  local added, bad = try(undo, KEYS[2], 'ZADD', KEYS[2], due, ARGV[1])
  if bad then return bad end
  if added == 1 then table.insert(undo, {'ZREM', KEYS[2], ARGV[1]}) end
  fields[2] = $s_scheduled
  table.insert(fields, $f_due)
  table.insert(fields, due)
else
  local bad = ready(KEYS[1], KEYS[4], ARGV[1], undo)
  if bad then return bad end
end
if unique then
  table.insert(fields, $f_unique)
  table.insert(fields, unique)
end
local _, bad = try(undo, KEYS[3], 'HSET', KEYS[3], unpack(fields))
if bad then return bad end
return {1, ARGV[2]}
`)

// promoteScript moves due tasks from the delayed set to the stream. ZREM and XADD happen
// in one script, so two workers promoting at once never deliver a task twice.
//
//	KEYS[1] delayed   KEYS[2] stream   KEYS[3] notify
//	ARGV[1] max tasks to move
//
// Returns {moved, ms until the next task is due or -1 when none waits}.
var promoteScript = script(`
local bad = check({{KEYS[1], 'zset', 'none'}, {KEYS[2], 'stream', 'none'}, {KEYS[3], 'stream', 'none'}})
if bad then return bad end
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
for _, env in ipairs(due) do
  local bad = ready(KEYS[2], KEYS[3], env)
  if bad then return bad end
  redis.call('ZREM', KEYS[1], env)
end
local wait = -1
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 2 then wait = math.max(tonumber(nxt[2]) - now, 0) end
return {#due, wait}
`)

// reclaimScript takes over entries other consumers have held without a heartbeat for
// longer than the lease, by Redis's own idle clock, unless Redis has just come back from
// a silence longer than half a lease (see observe): then it takes nothing for one lease.
// It never takes an entry the calling consumer is running: a worker whose heartbeat was late must not start a second run of a
// task it still runs. An entry of its own that it does not hold any more (its start
// failed, or the reply of the read that handed it over was lost) it takes back like any.
// It scans from cursor and returns where to go on.
//
// A pending entry that was deleted from the stream (XTRIM, XDEL) is not claimed: XCLAIM
// would drop it from the pending list (Redis 7 does, for a deleted entry), and with it the
// last trace of its delivery, leaving its task running for ever. Its idle time proves
// nothing (a heartbeat does not claim a deleted entry either), so its consumer counts as
// dead only when silent (it renewed no lease for longer than the lease), or when it is the
// calling consumer, which is not running it. Such an entry whose delivery began (the
// entries hash names its task) is returned as lost, for endLostScript; one on which no
// delivery began is let go (XACK), as XCLAIM would have: there is no task to end.
//
//	KEYS[1] stream   KEYS[2] tick   KEYS[3] entries
//	ARGV[1] group   ARGV[2] consumer   ARGV[3] lease ms   ARGV[4] count   ARGV[5] cursor
//	ARGV[6...] the entries the consumer is running
//
// Returns {next cursor ('-' once the scan went round), {entries as XCLAIM returns them},
// {{entry id, task id, consumer that held it}...}}.
var reclaimScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}, {KEYS[3], 'hash', 'none'}})
if bad then return bad end
local now = now_ms()
local lease_ms = tonumber(ARGV[3])
if now < observe(KEYS[2], lease_ms, now) then return {ARGV[5], {}, {}} end
local running = {}
for i = 6, #ARGV do running[ARGV[i]] = true end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], ARGV[5], '+', ARGV[4])
local out, lost = {}, {}
for _, e in ipairs(p) do
  local mine = e[2] == ARGV[2]
  if not (mine and running[e[1]]) then
    if #redis.call('XRANGE', KEYS[1], e[1], e[1]) == 1 then
      for _, x in ipairs(redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], e[1])) do
        if x then table.insert(out, x) end
      end
    elseif mine or silent(KEYS[2], e[2], lease_ms, now) then
      local id = redis.call('HGET', KEYS[3], e[1])
      if id then
        table.insert(lost, {e[1], id, e[2]})
      else
        redis.call('XACK', KEYS[1], ARGV[1], e[1])
      end
    end
  end
end
local nxt = '-'
if #p == tonumber(ARGV[4]) then nxt = '(' .. p[#p][1] end
return {nxt, out, lost}
`)

// endLostScript ends a task whose delivery was lost with its entry: the entry was deleted
// from the stream while a consumer, which died since, ran the task (see reclaimScript).
// The task cannot run again: its envelope, the only signed record of what to run and for
// whom, went with the entry, and the state keeps only its digest (keeping a copy of every
// envelope for this would double what each running task holds in Redis, caller included).
// So it ends dead with the reason given, its dead letter (without envelope) names it, and
// Result returns. Its lease token is raised, as by a delivery that took it over: a late
// write of the consumer that held it is fenced off, and its heartbeat stops its run.
//
// It checks again, atomically, what reclaimScript found, and does nothing unless it
// still holds: the entry is pending with the same consumer, idle for longer than the
// lease, deleted from the stream, mapped to the task, and its consumer silent (or the
// caller itself) with no stall grace running. A task that moved on (another delivery
// began since, or it finished) is left as it is; only the entry is let go.
//
//	KEYS[1] stream   KEYS[2] tick   KEYS[3] entries   KEYS[4] dead   KEYS[5] state
//	KEYS[6] done
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] the consumer that held it
//	ARGV[4] calling consumer   ARGV[5] lease ms   ARGV[6] task id   ARGV[7] reason
//	ARGV[8] error text   ARGV[9] ttl ms   ARGV[10] outcome MAC
//
// Returns 1 when the task ended, 2 when only the entry was let go, 0 when it is not lost.
var endLostScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}, {KEYS[3], 'hash', 'none'},
  {KEYS[4], 'stream', 'none'}, {KEYS[5], 'hash', 'none'}, {KEYS[6], 'list', 'none'}})
if bad then return bad end
local now = now_ms()
local lease_ms = tonumber(ARGV[5])
if now < observe(KEYS[2], lease_ms, now) then return 0 end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] or p[1][3] < lease_ms then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 1 then return 0 end
if ARGV[3] ~= ARGV[4] and not silent(KEYS[2], ARGV[3], lease_ms, now) then return 0 end
if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[6] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
local v = redis.call('HMGET', KEYS[5], $f_state, $f_entry, $f_kind, $f_attempts)
if v[1] ~= $s_running or v[2] ~= ARGV[2] then return 2 end
redis.call('HINCRBY', KEYS[5], $f_lease, 1)
redis.call('XADD', KEYS[4], '*', $d_id, ARGV[6], $f_kind, v[3] or '', $d_entry, ARGV[2],
  $f_reason, ARGV[7], $f_error, ARGV[8], $f_attempts, v[4] or 0, $d_failed, now, $env, '')
redis.call('HDEL', KEYS[5], $f_result)
redis.call('HSET', KEYS[5], $f_state, $s_dead, $f_reason, ARGV[7], $f_error, ARGV[8], $f_finished, now, $f_mac, ARGV[10])
redis.call('PEXPIRE', KEYS[5], ARGV[9])
signal_done(KEYS[5], KEYS[6], ARGV[9])
return 1
`)

// fetchScript reads up to count new entries for a consumer, as XREADGROUP does, but
// inside Redis, so that an entry larger than the worker's limit never reaches the
// worker: such an entry comes back as its id, its size and the task id it claims, for
// the worker to dead-letter (deadEntryScript reads it where it lies). It also returns the
// newest id of the notify stream, from which the worker blocks when nothing was read.
//
//	KEYS[1] stream   KEYS[2] notify
//	ARGV[1] group    ARGV[2] consumer   ARGV[3] count   ARGV[4] max entry bytes
//
// Returns {notify id, {entries as XREADGROUP gives them}, {{id, size, claimed id}...}}.
//
// It checks no type: it reads the notify stream (XREVRANGE) and the paused flag (EXISTS,
// of any type), and XREADGROUP, its one write, meets the stream before it hands anything
// over. Through try, either fails on a key of the wrong type with nothing written.
var fetchScript = script(`
local mark = '0-0'
local last, bad = try({}, KEYS[2], 'XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if bad then return bad end
if #last == 1 then mark = last[1][1] end
if #KEYS == 3 and redis.call('EXISTS', KEYS[3]) == 1 then return {mark, {}, {}} end
local r, bad = try({}, KEYS[1], 'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if bad then return bad end
local small, big = {}, {}
if r then
  for _, e in ipairs(r[1][2]) do
    local size, claimed = 0, ''
    for i = 1, #e[2], 2 do
      size = size + #e[2][i] + #e[2][i + 1]
      if e[2][i] == $env then
        claimed = string.match(string.sub(e[2][i + 1], 1, 256), $id_pattern) or ''
      end
    end
    if size > tonumber(ARGV[4]) then
      table.insert(big, {e[1], size, claimed})
    else
      table.insert(small, e)
    end
  end
end
return {mark, small, big}
`)

// startScript begins a delivery of a task: it raises the task's lease token (the fence
// every later write of this delivery carries) and counts the attempt. A task whose
// earlier deliveries began and never settled (their workers died, or lost the lease) as
// often as it may run begins without counting one; the worker dead-letters it
// worker_lost, so that a task that crashes its worker stops taking down worker after
// worker. Refused, with nothing written but the removal of a duplicate:
//
//	a delivery whose entry another consumer holds now;
//	a task that has finished: the delivery is a duplicate (an envelope copied back into
//	the stream, or an entry another worker settled) and is removed unrun;
//	a task with no record: it finished and its record expired, or the entry was written
//	past the client; the worker dead-letters the entry.
//
// A delivery that begins is recorded in the entries hash (and the record of the task's
// previous delivery, if on another entry, removed: that one can settle nothing now).
//
// Keys and arguments:
//
// A task that was canceled (see cancelScript) is finished: its delivery is removed unrun.
// One with a cancel request pending (FieldCancel: an earlier run was asked to stop, and
// handed the task back before it learned of it) ends canceled here, unrun, with the MAC
// the request carries.
//
//	KEYS[1] stream   KEYS[2] state   KEYS[3] entries   KEYS[4] done
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] consumer   ARGV[4] runs allowed
//	ARGV[5] task id  ARGV[6] ttl ms of a final state
//	ARGV[7] the call's name, unique to it (Broker.startCall)
//
// Returns {1, attempts, lease} to run, {0} when the entry is another's, {-1} without a
// record, {-2} for a finished task, {-3, attempts, lease} when its runs are spent.
//
// A call that began the task records its name and answer (FieldBegun). Run again (the
// client library sent it again after a read timeout or a dropped connection, not knowing
// that Redis had run it), it finds them and answers the same, writing nothing: counting
// the attempt again would spend a run the task never had, and dead-letter a task allowed
// one run as worker_lost before it ran.
//
// It runs on every delivery, so it checks types only where try cannot: XPENDING meets
// the stream first, HMGET the state, and the first write of either path the entries
// hash; the done list is checked only when a Result waits for a canceled end. The lease
// token and the attempt count are counted up from what HMGET read and written in the
// one HSET of the state, not with HINCRBY each: a state whose token or count is not a
// number is refused like a key of the wrong type, before anything is written.
var startScript = script(`
local p, bad = try({}, KEYS[1], 'XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if bad then return check({{KEYS[1], 'stream'}}) or bad end
if #p == 0 or p[1][2] ~= ARGV[3] then return {0} end
local v, bad = try({}, KEYS[2], 'HMGET', KEYS[2], $f_state, $f_attempts, $f_entry, $f_cancel, $f_waiting, $f_begun, $f_lease)
if bad then return bad end
local st = v[1]
if not st then return {-1} end
if st == $s_running and v[6] then
  local call, answer = string.match(v[6], '^(%S+) (%S+)')
  if call == ARGV[7] then return {tonumber(answer), tonumber(v[2]), tonumber(v[7])} end
end
local final = st == $s_succeeded or st == $s_dead or st == $s_canceled
if final or (v[4] and #KEYS == 4) then
  if not final and v[5] then
    bad = check({{KEYS[4], 'list', 'none'}})
    if bad then return bad end
  end
  local _, bad = try({}, KEYS[3], 'HDEL', KEYS[3], ARGV[2])
  if bad then return bad end
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  if not final then
    -- A cancel was requested while an earlier run went on, and that run handed the task
    -- back before its heartbeat learned of it: the task ends canceled now, unrun.
    redis.call('HDEL', KEYS[2], $f_cancel, $f_result)
    redis.call('HSET', KEYS[2], $f_state, $s_canceled, $f_reason, $s_canceled, $f_error, $cancel_message,
      $f_finished, now_ms(), $f_mac, v[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
    if v[5] then wake(KEYS[4], ARGV[6]) end
  end
  return {-2}
end
local attempts, lease = tonumber(v[2] or 0), tonumber(v[7] or 0)
if not attempts or not lease then
  return redis.error_reply('WRONGTYPE taskgen: key ' .. KEYS[2] .. ' holds a hash whose lease or attempts is not a number')
end
local _, bad = try({}, KEYS[3], 'HSET', KEYS[3], ARGV[2], ARGV[5])
if bad then return bad end
if v[3] and v[3] ~= ARGV[2] then redis.call('HDEL', KEYS[3], v[3]) end
local spent = st == $s_running and attempts >= tonumber(ARGV[4])
lease = lease + 1
if not spent then attempts = attempts + 1 end
local answer = spent and -3 or 1
redis.call('HSET', KEYS[2], $f_state, $s_running, $f_owner, ARGV[3], $f_entry, ARGV[2], $f_started, now_ms(),
  $f_begun, ARGV[7] .. ' ' .. answer, $f_lease, lease, $f_attempts, attempts)
return {answer, attempts, lease}
`)

// heartbeatScript renews the leases a consumer holds, and only those. For each entry it
// answers 1 (held: renewed), 2 (held and renewed, but an operator asked for the task to be
// canceled: FieldCancel), 0 (gone: no longer pending, because it was settled) or -1
// (taken: another consumer holds the entry, or another delivery of the task began since
// this one, or another worker ended it as lost, so this run must stop and write nothing).
//
// A lease is renewed by claiming its entry again (its idle time starts over), and by the
// consumer's own record in the tick hash, which is all that renews a held entry that was
// deleted from the stream: XCLAIM would drop it from the pending list (see reclaimScript).
//
//	KEYS[1] stream   KEYS[2] tick   KEYS[3...] the state of each entry's task
//	ARGV[1] group    ARGV[2] consumer   ARGV[3] lease ms   then per entry: entry id,
//	lease token (0: the delivery has not begun, only the entry is checked)
var heartbeatScript = script(`
local spec = {{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}}
for i = 3, #KEYS do table.insert(spec, {KEYS[i], 'hash', 'none'}) end
local bad = check(spec)
if bad then return bad end
local now = now_ms()
observe(KEYS[2], tonumber(ARGV[3]), now)
redis.call('HSET', KEYS[2], $t_consumer .. ARGV[2], now)
local out = {}
for i = 3, #KEYS do
  local entry, lease = ARGV[2 * i - 2], ARGV[2 * i - 1]
  local current = lease == '0' or redis.call('HGET', KEYS[i], $f_lease) == lease
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if #p == 0 then
    out[i - 2] = current and 0 or -1
  elseif p[1][2] ~= ARGV[2] or not current then
    out[i - 2] = -1
  else
    if #redis.call('XRANGE', KEYS[1], entry, entry) == 1 then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    end
    out[i - 2] = 1
    if lease ~= '0' and redis.call('HEXISTS', KEYS[i], $f_cancel) == 1 then out[i - 2] = 2 end
  end
end
return out
`)

// completeScript records a successful attempt and wakes Result waiters.
//
// A succeeded task keeps for its TTL only what Result, the inspector and the fence need:
// state, kind, attempts, lease token, start and finish times, result and outcome MAC
// (and its unique key and error history when it has them). What served its run (owner,
// entry, envelope digest, submit time, due time) goes: every finished task holds its
// state for a day by default, so each byte counts many times over.
//
//	KEYS[1] stream   KEYS[2] state    KEYS[3] done   KEYS[4] entries
//	ARGV[1] group    ARGV[2] entry id ARGV[3] lease   ARGV[4] result JSON  ARGV[5] ttl ms
//	ARGV[6] outcome MAC
//
// Returns 1 when recorded, 0 when fenced off, -1 when the task has no record.
//
// It runs on every task that succeeds, so it checks types only where try cannot: the
// fence's read meets the state first and XACK the stream; the entries hash is checked,
// and the done list only when a Result waits (it is touched only then).
var completeScript = script(`
local f, v = fence(KEYS[2], ARGV[3], $f_waiting)
if f ~= 1 then return f end
local spec = {{KEYS[4], 'hash', 'none'}}
if v[3] then table.insert(spec, {KEYS[3], 'list', 'none'}) end
local bad = check(spec)
if bad then return bad end
local _, bad = try({}, KEYS[1], 'XACK', KEYS[1], ARGV[1], ARGV[2])
if bad then return bad end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[2], $f_error, $f_reason, $f_cancel, $f_owner, $f_entry, $f_digest, $f_submitted, $f_due, $f_skew_since, $f_begun)
redis.call('HSET', KEYS[2], $f_state, $s_succeeded, $f_result, ARGV[4], $f_finished, now_ms(), $f_mac, ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if v[3] then wake(KEYS[3], ARGV[5]) end
return 1
`)

// retryScript schedules the next attempt of a failed task after a delay, with the same
// envelope: the attempt count lives in the state, so a retry re-signs nothing.
//
// The task waits in the retry set (Keys.Retry), apart from the delayed set, so that each
// is counted with ZCARD; its due time and the attempt's error are recorded for the
// inspector.
//
//	KEYS[1] stream   KEYS[2] retry    KEYS[3] state   KEYS[4] entries
//	ARGV[1] group    ARGV[2] entry id ARGV[3] lease  ARGV[4] envelope  ARGV[5] delay ms
//	ARGV[6] error text
//
// Returns 1 when scheduled, 0 when fenced off, -1 when the task has no record.
var retryScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'zset', 'none'}, {KEYS[3], 'hash', 'none'}, {KEYS[4], 'hash', 'none'}})
if bad then return bad end
local f = fence(KEYS[3], ARGV[3])
if f ~= 1 then return f end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
local now = now_ms()
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
remember(KEYS[3], ARGV[6], now)
redis.call('HSET', KEYS[3], $f_state, $s_retrying, $f_error, ARGV[6], $f_due, now + tonumber(ARGV[5]))
return 1
`)

// deadScript moves a task that failed for good to the dead-letter stream.
//
//	KEYS[1] stream   KEYS[2] dead     KEYS[3] state   KEYS[4] done   KEYS[5] entries
//	ARGV[1] group    ARGV[2] entry id ARGV[3] lease   ARGV[4] envelope (as received)
//	ARGV[5] reason   ARGV[6] error text  ARGV[7] ttl ms   ARGV[8] task id
//	ARGV[9] outcome MAC   ARGV[10] the worker's vouch for the envelope
//	ARGV[11] the dead-letter stream's cap on entries   ARGV[12] its cap on age, ms (0: none)
//
// Returns 1 when recorded, 0 when fenced off, -1 when the task has no record.
var deadScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'stream', 'none'}, {KEYS[3], 'hash', 'none'}, {KEYS[4], 'list', 'none'},
  {KEYS[5], 'hash', 'none'}})
if bad then return bad end
local f = fence(KEYS[3], ARGV[3])
if f ~= 1 then return f end
local now = now_ms()
local v = redis.call('HMGET', KEYS[3], $f_kind, $f_attempts)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
local de = redis.call('XADD', KEYS[2], '*', $d_id, ARGV[8], $f_kind, v[1] or '', $d_entry, ARGV[2],
  $f_reason, ARGV[5], $f_error, ARGV[6], $f_attempts, v[2] or 0, $d_failed, now, $d_vouch, ARGV[10], $env, ARGV[4])
if #ARGV >= 12 then trim_dead(KEYS[2], ARGV[11], ARGV[12], now) end
remember(KEYS[3], ARGV[6], now)
redis.call('HDEL', KEYS[3], $f_result, $f_cancel)
redis.call('HSET', KEYS[3], $f_state, $s_dead, $f_reason, ARGV[5], $f_error, ARGV[6], $f_finished, now, $f_mac, ARGV[9], $f_dead_entry, de)
redis.call('PEXPIRE', KEYS[3], ARGV[7])
signal_done(KEYS[3], KEYS[4], ARGV[7])
return 1
`)

// releaseScript hands a task this worker could not finish (it is shutting down) back to
// the stream at once, with the same envelope, so another worker takes it without
// waiting for the lease to run out and without spending an attempt.
//
//	KEYS[1] stream   KEYS[2] state   KEYS[3] notify   KEYS[4] entries
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] lease   ARGV[4] envelope
//
// Returns 1 when handed back, 0 when fenced off, -1 when the task has no record.
var releaseScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}, {KEYS[3], 'stream', 'none'}, {KEYS[4], 'hash', 'none'}})
if bad then return bad end
local f = fence(KEYS[2], ARGV[3])
if f ~= 1 then return f end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
local bad = ready(KEYS[1], KEYS[3], ARGV[4])
if bad then return bad end
redis.call('HINCRBY', KEYS[2], $f_attempts, -1)
redis.call('HSET', KEYS[2], $f_state, $s_pending)
return 1
`)

// deferScript hands a task back after a delay without spending an attempt, for a worker of
// another version: the one that refused it does not know its kind, or cannot accept its
// arguments' schema. The first hand-back records when it happened, by Redis's clock: the
// skew grace is counted from then.
//
//	KEYS[1] stream   KEYS[2] delayed  KEYS[3] state   KEYS[4] entries
//	ARGV[1] group    ARGV[2] entry id ARGV[3] lease  ARGV[4] envelope  ARGV[5] delay ms
//	ARGV[6] error text
//
// Returns 1 when handed back, 0 when fenced off, -1 when the task has no record.
var deferScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'zset', 'none'}, {KEYS[3], 'hash', 'none'}, {KEYS[4], 'hash', 'none'}})
if bad then return bad end
local f = fence(KEYS[3], ARGV[3])
if f ~= 1 then return f end
local now = now_ms()
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
redis.call('HINCRBY', KEYS[3], $f_attempts, -1)
redis.call('HSETNX', KEYS[3], $f_skew_since, now)
redis.call('HSET', KEYS[3], $f_state, $s_scheduled, $f_error, ARGV[6], $f_due, now + tonumber(ARGV[5]))
return 1
`)

// deadEntryScript dead-letters a stream entry that cannot begin: its envelope does not
// verify, or its task has no record. It acts on the entry only, while this consumer holds
// it. The task the envelope claims to be is touched only when the entry is byte for byte
// the envelope submitted for it (its digest matches the state's): then it is that task,
// refused by this worker (signed with a key it lacks, larger than its limit), its state
// ends so Result returns, and the dead letter names it. A forged or altered copy never
// ends the genuine task.
//
// An entry too large for the worker to read is given without its envelope (ARGV[10] set):
// the script reads it from the stream itself, compares its digest only up to
// MaxDigestSize, and keeps it in the dead letter only up to that size, with its size.
//
//	KEYS[1] stream   KEYS[2] dead   KEYS[3] entries
//	KEYS[4] state (optional)   KEYS[5] done (optional)
//	ARGV[1] group    ARGV[2] entry id   ARGV[3] consumer   ARGV[4] envelope
//	ARGV[5] reason   ARGV[6] error text ARGV[7] ttl ms     ARGV[8] claimed task id
//	ARGV[9] outcome MAC of the claimed task, written only when the entry is its envelope
//	ARGV[10] '1' when the envelope is to be read from the stream   ARGV[11] MaxDigestSize
//	ARGV[12] the dead-letter stream's cap on entries   ARGV[13] its cap on age, ms (0: none)
//
// Returns 1 when dead-lettered, 0 when another consumer holds the entry.
var deadEntryScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'stream', 'none'}, {KEYS[3], 'hash', 'none'}})
if bad then return bad end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
local now = now_ms()
local env, size = ARGV[4], #ARGV[4]
if ARGV[10] == '1' then
  env = ''
  local x = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
  if #x == 1 then
    for i = 1, #x[1][2], 2 do
      if x[1][2][i] == $env then env = x[1][2][i + 1] end
    end
  end
  size = #env
  if size > tonumber(ARGV[11]) then env = '' end
end
local genuine, kind, attempts = false, '', 0
local dt = #KEYS == 5 and redis.call('TYPE', KEYS[5])['ok']
if #KEYS == 5 and redis.call('TYPE', KEYS[4])['ok'] == 'hash' and (dt == 'list' or dt == 'none') then
  local v = redis.call('HMGET', KEYS[4], $f_state, $f_digest, $f_kind, $f_attempts)
  genuine = v[1] and v[1] ~= $s_succeeded and v[1] ~= $s_dead and env ~= '' and v[2] == redis.sha1hex(env)
  if genuine then kind, attempts = v[3] or '', v[4] or 0 end
end
local id = ''
if genuine then id = ARGV[8] end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
local de = redis.call('XADD', KEYS[2], '*', $d_id, id, $f_kind, kind, $d_entry, ARGV[2], $f_reason, ARGV[5],
  $f_error, ARGV[6], $f_attempts, attempts, $d_failed, now, $d_size, size, $env, env)
if #ARGV >= 13 then trim_dead(KEYS[2], ARGV[12], ARGV[13], now) end
if genuine then
  redis.call('HDEL', KEYS[4], $f_result, $f_cancel)
  redis.call('HSET', KEYS[4], $f_state, $s_dead, $f_reason, ARGV[5], $f_error, ARGV[6], $f_finished, now, $f_mac, ARGV[9], $f_dead_entry, de)
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
  signal_done(KEYS[4], KEYS[5], ARGV[7])
end
return 1
`)

// requeueScript moves a dead letter back to the stream for a fresh run under the same
// task id, once: a second requeue of the same entry finds it gone and returns 0. The
// lease token is kept: it only ever grows, so a worker that held an older delivery stays
// fenced off.
//
//	KEYS[1] dead     KEYS[2] stream   KEYS[3] state   KEYS[4] done   KEYS[5] notify
//	ARGV[1] dead-letter entry id      ARGV[2] envelope to enqueue   ARGV[3] kind
var requeueScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'stream', 'none'}, {KEYS[3], 'hash', 'none'}, {KEYS[4], 'list', 'none'}, {KEYS[5], 'stream', 'none'}})
if bad then return bad end
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[1])
local bad = ready(KEYS[2], KEYS[5], ARGV[2])
if bad then return bad end
redis.call('HDEL', KEYS[3], $f_reason, $f_error, $f_result, $f_finished, $f_mac, $f_cancel, $f_dead_entry)
redis.call('HSET', KEYS[3], $f_state, $s_pending, $f_attempts, 0, $f_kind, ARGV[3], $f_digest, redis.sha1hex(ARGV[2]))
redis.call('PERSIST', KEYS[3])
redis.call('DEL', KEYS[4])
return 1
`)

// cancelScript ends a running task canceled: an operator asked for it (FieldCancel) and
// the worker stopped its run. It is fenced like completeScript; the outcome is final, not
// retried, whatever the run returned.
//
//	KEYS[1] stream   KEYS[2] state    KEYS[3] done   KEYS[4] entries
//	ARGV[1] group    ARGV[2] entry id ARGV[3] lease  ARGV[4] error text  ARGV[5] ttl ms
//	ARGV[6] outcome MAC
//
// Returns 1 when recorded, 0 when fenced off, -1 when the task has no record.
var cancelScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}, {KEYS[3], 'list', 'none'}, {KEYS[4], 'hash', 'none'}})
if bad then return bad end
local f = fence(KEYS[2], ARGV[3])
if f ~= 1 then return f end
local now = now_ms()
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
remember(KEYS[2], ARGV[4], now)
redis.call('HDEL', KEYS[2], $f_result, $f_cancel)
redis.call('HSET', KEYS[2], $f_state, $s_canceled, $f_reason, $s_canceled, $f_error, ARGV[4], $f_finished, now, $f_mac, ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
signal_done(KEYS[2], KEYS[3], ARGV[5])
return 1
`)

// pruneScript removes a consumer from the group, and its record from the tick hash, if,
// at this instant, it holds no entry. Checking and deleting in one script matters: XGROUP
// DELCONSUMER drops the consumer's pending entries, and an entry dropped from the pending
// list is never delivered again.
//
//	KEYS[1] stream   KEYS[2] tick
//	ARGV[1] group    ARGV[2] consumer
var pruneScript = script(`
local bad = check({{KEYS[1], 'stream', 'none'}, {KEYS[2], 'hash', 'none'}})
if bad then return bad end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], $t_consumer .. ARGV[2])
return 1
`)

// watchScript reads a task's state hash for a Result about to wait, and marks the hash
// (FieldWaiting) unless the task has finished, in the one step that makes a finish
// between the read and the wait impossible to miss: the finish sees the mark and signals.
//
//	KEYS[1] state
//
// Returns the hash as HGETALL does; empty when there is no task.
var watchScript = script(`
local bad = check({{KEYS[1], 'hash', 'none'}})
if bad then return bad end
local st = redis.call('HGET', KEYS[1], $f_state)
if not st then return {} end
if st ~= $s_succeeded and st ~= $s_dead and st ~= $s_canceled then
  redis.call('HSET', KEYS[1], $f_waiting, '1')
end
return redis.call('HGETALL', KEYS[1])
`)

// scripts lists every script, for the test that checks their names.
var scripts = map[string]*redis.Script{
	"enqueue": enqueueScript, "fetch": fetchScript, "promote": promoteScript, "reclaim": reclaimScript,
	"start": startScript, "heartbeat": heartbeatScript, "complete": completeScript,
	"retry": retryScript, "dead": deadScript, "release": releaseScript, "defer": deferScript,
	"deadEntry": deadEntryScript, "watch": watchScript, "requeue": requeueScript, "prune": pruneScript,
	"leadSchedule": leadScheduleScript, "fenceSchedule": fenceScheduleScript,
	"advanceSchedule": advanceScheduleScript, "releaseSchedule": releaseScheduleScript,
	"endLost": endLostScript, "cancel": cancelScript,
	"cancelTask": cancelTaskScript, "deleteTask": deleteTaskScript, "resume": resumeScript,
}
