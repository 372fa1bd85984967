package ratelimit

import "github.com/redis/go-redis/v9"

// Times inside the scripts are seconds since 2017-01-01 (as in redis_rate),
// which keeps float64 precision at about a microsecond.
const epoch2017 = 1483228800

// factorLua computes the throttle factor in [floor, 1] from the :429 hash
// (f = factor right after the last decrease, t = its time) at time tnow,
// recovering linearly to 1 over `recovery` seconds.
const factorLua = `
local function factor_at(key, tnow, recovery)
  local th = redis.call("HMGET", key, "f", "t")
  if not th[1] then return 1, nil end
  local f0 = tonumber(th[1])
  local t0 = tonumber(th[2])
  local el = tnow - t0
  if el < 0 then el = 0 end
  local f = f0 + (1 - f0) * el / recovery
  if f > 1 then f = 1 end
  return f, t0
end
local function redis_now()
  local t = redis.call("TIME")
  return (t[1] - 1483228800) + (t[2] / 1000000)
end
`

// reserveScript is GCRA with a reservation horizon, and a queue of come-back
// times for the callers it turns away.
//
// KEYS: tat, throttle, wake. ARGV: rate, period (s), burst, max_wait (s),
// tnow ("" = Redis time; only for the throttle factor), recovery (s),
// come-back cap (s). Returns {allowed 0|1, wait (s) as string, factor as
// string, come_back (s) as string}: when allowed, wait is how long until
// the slot begins; otherwise when one would be free, and come_back when
// this caller should try again. The wake key is the slot of the last
// caller turned away: each one turned away gets the slot after it (at
// least the next free one), and come_back is when that slot enters the
// max_wait horizon, so the callers turned away return one per slot
// instead of all at once when the next slot is free (and all but a few
// are turned away again, while the slots after theirs go unused). A slot
// that goes unused (the queue's callers did not come back, e.g. deleted)
// resets the queue to the GCRA position.
var reserveScript = redis.NewScript(factorLua + `
local now = redis_now()
local rate = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tnow = now
if ARGV[5] ~= "" then tnow = tonumber(ARGV[5]) end
local factor = factor_at(KEYS[2], tnow, tonumber(ARGV[6]))
local cap = tonumber(ARGV[7])

local interval = period / (rate * factor)
local b = burst * factor
if b < 1 then b = 1 end

local tat = tonumber(redis.call("GET", KEYS[1]) or now)
local idle = tat < now - interval
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - b * interval - now
if wait > max_wait then
  -- This caller's slot: the one after the last caller's turned away, or
  -- the next free one.
  local slot = tat
  local w = tonumber(redis.call("GET", KEYS[3]) or "")
  if w and w + interval > slot then slot = w + interval end
  local come_back = slot - b * interval + interval - now - max_wait
  if come_back > cap then
    come_back = cap
  else
    redis.call("SET", KEYS[3], string.format("%.6f", slot), "PX", math.ceil((slot - now) * 1000) + 1000)
  end
  if come_back < 0 then come_back = 0 end
  return {0, tostring(wait), tostring(factor), tostring(come_back)}
end
if wait < 0 then wait = 0 end
redis.call("SET", KEYS[1], string.format("%.6f", new_tat), "PX", math.ceil((new_tat - now) * 1000) + 1000)
if idle then
  redis.call("DEL", KEYS[3])
end
return {1, tostring(wait), tostring(factor), "0"}
`)

// throttleScript records a 429.
//
// KEYS: throttle. ARGV: tnow ("" = Redis time), decrease, floor,
// recovery (s), cooldown (s). Returns the factor now in effect, as a string.
var throttleScript = redis.NewScript(factorLua + `
local tnow
if ARGV[1] ~= "" then tnow = tonumber(ARGV[1]) else tnow = redis_now() end
local recovery = tonumber(ARGV[4])
local f, t0 = factor_at(KEYS[1], tnow, recovery)
if t0 and tnow - t0 < tonumber(ARGV[5]) then
  return tostring(f)
end
local nf = f * tonumber(ARGV[2])
local floor = tonumber(ARGV[3])
if nf < floor then nf = floor end
redis.call("HSET", KEYS[1], "f", string.format("%.6f", nf), "t", string.format("%.6f", tnow))
redis.call("PEXPIRE", KEYS[1], math.ceil(recovery * 1000) + 1000)
return tostring(nf)
`)

// factorScript reads the factor in effect. KEYS: throttle. ARGV: tnow
// ("" = Redis time), recovery (s).
var factorScript = redis.NewScript(factorLua + `
local tnow
if ARGV[1] ~= "" then tnow = tonumber(ARGV[1]) else tnow = redis_now() end
local f = factor_at(KEYS[1], tnow, tonumber(ARGV[2]))
return tostring(f)
`)

// pauseScript moves the GCRA position so that no request passes before
// now + d: to now + d + the burst tolerance. KEYS: tat. ARGV: d (s),
// tolerance (s).
var pauseScript = redis.NewScript(factorLua + `
local now = redis_now()
local until_t = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or now)
if tat < until_t then
  redis.call("SET", KEYS[1], string.format("%.6f", until_t), "PX", math.ceil((until_t - now) * 1000) + 1000)
end
return 1
`)
