import type { Redis } from 'ioredis'

/**
 * Counters of failed credential attempts, each living for a fixed window from
 * its first count. `increment` returns the count including this attempt, so a
 * caller checks the limit and counts in one step: concurrent attempts can
 * never all see "under the limit".
 */
export interface AttemptCounters {
  increment: (key: string, windowMs: number) => Promise<{ count: number, resetInMs: number }>
  /** Takes one count back (an attempt that turned out fine, or was refused before it was tried). */
  decrement: (key: string) => Promise<void>
  close: () => void
}

/** One process's counters; expired ones are swept once per `sweepIntervalMs`, so memory stays bounded by the window's traffic. */
export function memoryAttemptCounters (sweepIntervalMs: number): AttemptCounters {
  const counters = new Map<string, { count: number, resetAt: number }>()
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [key, counter] of counters) if (counter.resetAt <= now) counters.delete(key)
  }, sweepIntervalMs)
  sweep.unref()

  return {
    async increment (key, windowMs) {
      const now = Date.now()
      let counter = counters.get(key)
      if (counter === undefined || counter.resetAt <= now) {
        counter = { count: 0, resetAt: now + windowMs }
        counters.set(key, counter)
      }
      counter.count += 1
      return { count: counter.count, resetInMs: counter.resetAt - now }
    },
    async decrement (key) {
      const counter = counters.get(key)
      if (counter !== undefined && counter.count > 0) counter.count -= 1
    },
    close () { clearInterval(sweep) }
  }
}

// INCR and the expiry in one script: a key never exists without its expiry.
const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { count, ttl }`

// DECR of a key that expired meanwhile would create one without an expiry.
const DECREMENT = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  redis.call('DECR', KEYS[1])
end
return 0`

/** Counters in Redis, shared by every replica; each step is one script, atomic in Redis. */
export function redisAttemptCounters (redis: Redis, keyPrefix: string): AttemptCounters {
  return {
    async increment (key, windowMs) {
      const [count, ttl] = await redis.eval(INCREMENT, 1, keyPrefix + key, windowMs) as [number, number]
      return { count, resetInMs: ttl }
    },
    async decrement (key) {
      await redis.eval(DECREMENT, 1, keyPrefix + key)
    },
    close () {}
  }
}
