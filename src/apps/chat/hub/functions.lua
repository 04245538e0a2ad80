#!lua name=loopchat
-- The chat's shared state in Redis, changed only by these functions, each atomic: a
-- change and its announcement happen together, so every instance sees every change once,
-- in the one order Redis made them. Loaded by every instance when it connects
-- (FUNCTION LOAD REPLACE); `src/apps/chat/hub/keys.rs` names the keys and channels.
--
-- The directory (members, nicknames, instances) lives under the hash tag {lc}, so that in
-- a Redis Cluster it is one shard's; each room's messages live under {r:ROOM}, spread over
-- the shards. `pub` (the first argument) is PUBLISH, or SPUBLISH on a cluster.
--
-- A member is "INSTANCE:CONN"; its value in lc:{lc}:members is "nick TAB lowercased
-- nick TAB room,room,...". Presence lines are "VERSION TAB KIND TAB MEMBER ...".

local P = 'lc:{lc}:'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fields(s)
  local out = {}
  for f in string.gmatch(s .. '\t', '([^\t]*)\t') do
    out[#out + 1] = f
  end
  return out
end

local function instance_of(member)
  return string.match(member, '^([^:]+):')
end

local function announce(pub, line)
  local v = redis.call('INCR', P .. 'ver')
  redis.call(pub, P .. 'presence', v .. '\t' .. line)
end

local function without(rooms, room)
  local out = {}
  for r in string.gmatch(rooms, '[^,]+') do
    if r ~= room then
      out[#out + 1] = r
    end
  end
  return table.concat(out, ',')
end

local function has(rooms, room)
  for r in string.gmatch(rooms, '[^,]+') do
    if r == room then
      return true
    end
  end
  return false
end

-- A member's fields (nick, lowercased nick, rooms), or nil if it is not a member.
local function member_fields(member)
  local value = redis.call('HGET', P .. 'members', member)
  return value and fields(value)
end

-- Sets a member's rooms.
local function set_rooms(member, f, rooms)
  redis.call('HSET', P .. 'members', member, f[1] .. '\t' .. f[2] .. '\t' .. rooms)
end

local function fresh_guest(member)
  local nick
  repeat
    nick = 'guest-' .. redis.call('INCR', P .. 'guest')
  until redis.call('HSETNX', P .. 'nicks', nick, member) == 1
  return nick
end

-- Removes a member everywhere, freeing its nickname if it holds it.
local function depart(pub, member)
  local value = redis.call('HGET', P .. 'members', member)
  if not value then
    return 0
  end
  local f = fields(value)
  if redis.call('HGET', P .. 'nicks', f[2]) == member then
    redis.call('HDEL', P .. 'nicks', f[2])
  end
  redis.call('HDEL', P .. 'members', member)
  redis.call('SREM', P .. 'mi:' .. instance_of(member), member)
  announce(pub, 'D\t' .. member)
  return 1
end

-- A new connection: a guest nickname no one holds. Returns it.
redis.register_function('lc_arrive', function(keys, args)
  local pub, member = args[1], args[2]
  local nick = fresh_guest(member)
  redis.call('HSET', P .. 'members', member, nick .. '\t' .. nick .. '\t')
  redis.call('SADD', P .. 'mi:' .. instance_of(member), member)
  announce(pub, 'A\t' .. member .. '\t' .. nick .. '\t')
  return nick
end)

-- A nickname change: 1 done, 0 taken, -1 no such member.
redis.register_function('lc_nick', function(keys, args)
  local pub, member, nick, lower = args[1], args[2], args[3], args[4]
  local value = redis.call('HGET', P .. 'members', member)
  if not value then
    return -1
  end
  local f = fields(value)
  local owner = redis.call('HGET', P .. 'nicks', lower)
  if owner and owner ~= member then
    return 0
  end
  if f[2] ~= lower and redis.call('HGET', P .. 'nicks', f[2]) == member then
    redis.call('HDEL', P .. 'nicks', f[2])
  end
  redis.call('HSET', P .. 'nicks', lower, member)
  redis.call('HSET', P .. 'members', member, nick .. '\t' .. lower .. '\t' .. f[3])
  announce(pub, 'N\t' .. member .. '\t' .. nick)
  return 1
end)

-- Joins a room (it becomes the member's active room): 1 done, -1 no such member.
redis.register_function('lc_join', function(keys, args)
  local pub, member, room = args[1], args[2], args[3]
  local f = member_fields(member)
  if not f then
    return -1
  end
  local rooms = without(f[3], room)
  if rooms == '' then
    rooms = room
  else
    rooms = rooms .. ',' .. room
  end
  set_rooms(member, f, rooms)
  announce(pub, 'J\t' .. member .. '\t' .. room)
  return 1
end)

-- Leaves a room: 1 done, 0 not in it, -1 no such member.
redis.register_function('lc_leave', function(keys, args)
  local pub, member, room = args[1], args[2], args[3]
  local f = member_fields(member)
  if not f then
    return -1
  end
  if not has(f[3], room) then
    return 0
  end
  set_rooms(member, f, without(f[3], room))
  announce(pub, 'L\t' .. member .. '\t' .. room)
  return 1
end)

-- A connection closed.
redis.register_function('lc_depart', function(keys, args)
  return depart(args[1], args[2])
end)

-- An instance's heartbeat: it is alive for ttl ms more. Then up to 1,000 members of
-- instances whose time ran out are removed (the rest at the next beat). Returns 1 if the
-- caller was no longer among the live instances (it was taken for dead: its members are
-- gone, and it must register them again), else 0; and how many members were removed.
redis.register_function('lc_beat', function(keys, args)
  local pub, inst, ttl = args[1], args[2], tonumber(args[3])
  local now = now_ms()
  local gone = redis.call('ZADD', P .. 'inst', now + ttl, inst)
  local reaped = 0
  local dead = redis.call('ZRANGEBYSCORE', P .. 'inst', '-inf', now, 'LIMIT', 0, 10)
  for _, d in ipairs(dead) do
    local members = redis.call('SRANDMEMBER', P .. 'mi:' .. d, 1000 - reaped)
    for _, m in ipairs(members) do
      reaped = reaped + depart(pub, m)
      redis.call('SREM', P .. 'mi:' .. d, m)
    end
    if redis.call('SCARD', P .. 'mi:' .. d) == 0 then
      redis.call('ZREM', P .. 'inst', d)
    end
    if reaped >= 1000 then
      break
    end
  end
  return { gone, reaped }
end)

-- An instance (re)connects: its members are exactly these (member, nick, lowercased
-- nick, rooms). Members it no longer has are removed; a nickname someone else took
-- meanwhile is replaced by a guest name. Returns the renamed, as member, nick, ...
redis.register_function('lc_restore', function(keys, args)
  local pub, inst, ttl, n = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  redis.call('ZADD', P .. 'inst', now_ms() + ttl, inst)
  local wanted = {}
  for i = 0, n - 1 do
    wanted[args[5 + 4 * i]] = true
  end
  for _, m in ipairs(redis.call('SMEMBERS', P .. 'mi:' .. inst)) do
    if not wanted[m] then
      depart(pub, m)
    end
  end
  local renamed = {}
  for i = 0, n - 1 do
    local at = 5 + 4 * i
    local member, nick, lower, rooms = args[at], args[at + 1], args[at + 2], args[at + 3]
    local old = redis.call('HGET', P .. 'members', member)
    if old then
      local f = fields(old)
      if f[2] ~= lower and redis.call('HGET', P .. 'nicks', f[2]) == member then
        redis.call('HDEL', P .. 'nicks', f[2])
      end
    end
    local owner = redis.call('HGET', P .. 'nicks', lower)
    if owner and owner ~= member then
      nick = fresh_guest(member)
      lower = nick
      renamed[#renamed + 1] = member
      renamed[#renamed + 1] = nick
    else
      redis.call('HSET', P .. 'nicks', lower, member)
    end
    redis.call('HSET', P .. 'members', member, nick .. '\t' .. lower .. '\t' .. rooms)
    redis.call('SADD', P .. 'mi:' .. inst, member)
    announce(pub, 'A\t' .. member .. '\t' .. nick .. '\t' .. rooms)
  end
  return renamed
end)

-- The whole directory at one version: version, then member, value, member, value, ...
redis.register_function {
  function_name = 'lc_snapshot',
  callback = function(keys, args)
    local out = { tonumber(redis.call('GET', P .. 'ver') or '0') }
    local all = redis.call('HGETALL', P .. 'members')
    for i = 1, #all do
      out[#out + 1] = all[i]
    end
    return out
  end,
  flags = { 'no-writes' },
}

-- A message or image in a room: the next id of the room (see below for the first), kept in its history (at most
-- max_len entries and max_bytes bytes), published to the room's channel. KEYS[1] is the
-- room's id counter, lc:{r:ROOM}:seq. The event's JSON is head .. id .. tail. Returns
-- the id.
redis.register_function('lc_say', function(keys, args)
  local pub, channel, head, tail = args[1], args[2], args[3], args[4]
  local max_len, max_bytes, expire = tonumber(args[5]), tonumber(args[6]), args[7]
  local base = string.sub(keys[1], 1, -4)
  local id = redis.call('INCR', keys[1])
  if id == 1 then
    -- A room new to this Redis (or to a Redis that lost its data) starts counting at its
    -- creation time in milliseconds times 1,000, so that ids only ever increase and a
    -- client's `after` from before a data loss cannot hide new messages.
    id = now_ms() * 1000 + 1
    redis.call('SET', keys[1], string.format('%d', id))
  end
  local json = head .. string.format('%d', id) .. tail
  local len = redis.call('RPUSH', base .. 'h', json)
  local bytes = redis.call('INCRBY', base .. 'hb', #json)
  while len > max_len or bytes > max_bytes do
    local old = redis.call('LPOP', base .. 'h')
    if not old then
      break
    end
    bytes = redis.call('DECRBY', base .. 'hb', #old)
    len = len - 1
  end
  redis.call('PEXPIRE', keys[1], expire)
  redis.call('PEXPIRE', base .. 'h', expire)
  redis.call('PEXPIRE', base .. 'hb', expire)
  redis.call(pub, channel, json)
  return id
end)

-- A room's last id and its history, oldest first. KEYS[1] is lc:{r:ROOM}:seq.
redis.register_function {
  function_name = 'lc_history',
  callback = function(keys, args)
    local base = string.sub(keys[1], 1, -4)
    local out = { tonumber(redis.call('GET', keys[1]) or '0') }
    for _, json in ipairs(redis.call('LRANGE', base .. 'h', 0, -1)) do
      out[#out + 1] = json
    end
    return out
  end,
  flags = { 'no-writes' },
}

-- A private message: the next private id, published to the recipient's instance and
-- to the sender's (once if the same) as "TO TAB FROM TAB json". KEYS[1] is lc:{lc}:pmid.
-- Returns 0, sending nothing, if the recipient is no longer a member.
redis.register_function('lc_pm', function(keys, args)
  local pub, inbox_to, inbox_from, to, from, head, tail =
    args[1], args[2], args[3], args[4], args[5], args[6], args[7]
  if redis.call('HEXISTS', P .. 'members', to) == 0 then
    return 0
  end
  local id = redis.call('INCR', keys[1])
  local payload = to .. '\t' .. from .. '\t' .. head .. id .. tail
  redis.call(pub, inbox_to, payload)
  if inbox_from ~= inbox_to then
    redis.call(pub, inbox_from, payload)
  end
  return id
end)
