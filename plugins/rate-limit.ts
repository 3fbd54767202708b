import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import ipaddr from 'ipaddr.js'
import type { Redis } from 'ioredis'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { memoryAttemptCounters, redisAttemptCounters } from './attempt-counters.js'

export interface CredentialAttempt {
  /** Over a limit: answer 429 with this Retry-After, and check nothing. */
  readonly retryAfterSeconds: number
  /** The credentials were right: the attempt is taken back, so successes never count. */
  succeeded: () => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The brute-force limit on an account's credentials (logins, current
     * passwords, codes): per account and client address, and, larger, per
     * account across all addresses.
     */
    failedLogins: {
      /**
       * Counts an attempt on the account of `email` from this request's
       * address before the credentials are checked, so that concurrent
       * attempts cannot overshoot the limit; a failed attempt stays counted.
       */
      start: (request: FastifyRequest, email: string) => Promise<CredentialAttempt>
    }
    /**
     * The limit on messages asked for an address (reset, verification):
     * counted per address whether an account has it or not, so a 429 tells
     * nothing about the account. Resolves to 0, or the Retry-After in seconds.
     */
    messageRequests: {
      count: (email: string) => Promise<number>
    }
    /** The limit on tokens per service client (CLIENT_TOKEN_RATE_MAX per window), counted once the client is authenticated: 0, or the Retry-After in seconds. */
    clientTokenRequests: {
      count: (clientId: string) => Promise<number>
    }
  }
}

export type RateLimitPluginOptions = Config['rateLimit']

/**
 * Per-IP limits on the credential endpoints (enabled per route with
 * `config: { rateLimit: {} }`) and the brute-force limit on failed attempts.
 * Counters live in memory, or in Redis when REDIS_URL is set so that every
 * replica shares them. A Redis outage lets requests through (logged) rather
 * than locking every user out.
 */
async function rateLimitPlugin (fastify: FastifyInstance, options: RateLimitPluginOptions) {
  let redis: Redis | undefined
  if (options.redisUrl !== undefined) {
    // Loaded only when configured: its start-up time is otherwise spent for nothing.
    const { Redis } = await import('ioredis')
    redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000 })
    redis.on('error', (error) => fastify.log.warn({ err: error }, 'redis (rate-limit store) error'))
    fastify.addHook('onClose', async () => { await redis?.quit().catch(() => redis?.disconnect()) })
  }

  await fastify.register(fastifyRateLimit, {
    global: false,
    max: options.ipMax,
    timeWindow: options.windowSeconds * 1000,
    ...(redis ? { redis } : {}),
    nameSpace: options.redisKeyPrefix,
    skipOnError: true,
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      error: 'Too Many Requests',
      message: `Too many requests, retry in ${context.after}`
    })
  })

  const counters = redis ? redisAttemptCounters(redis, options.redisKeyPrefix) : memoryAttemptCounters(options.emailWindowSeconds * 1000)
  fastify.addHook('onClose', async () => { counters.close() })
  const windowMs = options.emailWindowSeconds * 1000

  /** Counters that fail (Redis down) let the attempt through, like the per-IP limit: an outage must not lock everyone out. */
  async function guarded<T> (step: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await step()
    } catch (error) {
      fastify.log.warn({ err: error }, 'the failed-attempt counters are unavailable; the attempt is not counted')
      return fallback
    }
  }
  const unlimited = { count: 0, resetInMs: 0 }
  const refused = (resetInMs: number): CredentialAttempt => ({ retryAfterSeconds: Math.max(1, Math.ceil(resetInMs / 1000)), succeeded: async () => {} })

  fastify.decorate('messageRequests', {
    async count (email: string): Promise<number> {
      const key = `message-requests:${createHash('sha256').update(email).digest('base64url')}`
      const { count, resetInMs } = await guarded(() => counters.increment(key, windowMs), unlimited)
      return count > options.messageRequestMax ? Math.max(1, Math.ceil(resetInMs / 1000)) : 0
    }
  })

  fastify.decorate('clientTokenRequests', {
    async count (clientId: string): Promise<number> {
      const { count, resetInMs } = await guarded(() => counters.increment(`client-tokens:${clientId}`, options.windowSeconds * 1000), unlimited)
      return count > options.clientTokenMax ? Math.max(1, Math.ceil(resetInMs / 1000)) : 0
    }
  })

  fastify.decorate('failedLogins', {
    async start (request: FastifyRequest, email: string): Promise<CredentialAttempt> {
      // Hashed: no address of a user in Redis or in a heap dump.
      const account = createHash('sha256').update(email).digest('base64url')
      const pairKey = `failed-credentials:pair:${createHash('sha256').update(`${email}\n${clientNetwork(request.ip)}`).digest('base64url')}`
      const accountKey = `failed-credentials:account:${account}`
      const release = (key: string) => guarded(() => counters.decrement(key), undefined)

      const pair = await guarded(() => counters.increment(pairKey, windowMs), unlimited)
      if (pair.count > options.emailMax) {
        // A refused attempt is not a guess: taken back, so it neither piles up nor fills the account's budget.
        await release(pairKey)
        return refused(pair.resetInMs)
      }
      const all = await guarded(() => counters.increment(accountKey, windowMs), unlimited)
      if (all.count > options.accountMax) {
        await Promise.all([release(pairKey), release(accountKey)])
        return refused(all.resetInMs)
      }
      return {
        retryAfterSeconds: 0,
        succeeded: async () => { await Promise.all([release(pairKey), release(accountKey)]) }
      }
    }
  })
}

/** The client's address for the limits: an IPv4 address, or the /64 of an IPv6 one (what one host is usually given). */
export function clientNetwork (ip: string): string {
  if (!ipaddr.isValid(ip)) return ip
  const address = ipaddr.process(ip)
  if (address.kind() === 'ipv4') return address.toString()
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16))
  return `${parts.join(':')}::/64`
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x' })
