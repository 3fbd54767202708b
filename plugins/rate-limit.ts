import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The per-email limit on failed logins, which slows down guessing one account's password from many IPs. */
    failedLogins: {
      /** Seconds to wait when the email of this login request has used up its failures, else 0. Counts nothing. */
      retryAfterSeconds: (request: FastifyRequest) => Promise<number>
      record: (request: FastifyRequest) => Promise<void>
    }
  }
}

export type RateLimitPluginOptions = Config['rateLimit']

/**
 * Per-IP limits on the credential endpoints (enabled per route with
 * `config: { rateLimit: {} }`) and the per-email limit on failed logins.
 * Counters live in memory, or in Redis when REDIS_URL is set so that every
 * replica shares them. A Redis outage lets requests through (logged) rather
 * than locking every user out.
 */
async function rateLimitPlugin (fastify: FastifyInstance, options: RateLimitPluginOptions) {
  let redis: Redis | undefined
  if (options.redisUrl !== undefined) {
    // Loaded only when configured: ~40 ms of start-up otherwise spent for nothing.
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

  // The email is hashed into the key: no addresses in Redis.
  const failedLoginLimit = fastify.createRateLimit({
    max: options.emailMax,
    timeWindow: options.emailWindowSeconds * 1000,
    keyGenerator: (request) => `failed-login:${createHash('sha256').update((request.body as { email: string }).email).digest('base64url')}`
  })

  fastify.decorate('failedLogins', {
    async retryAfterSeconds (request: FastifyRequest) {
      const status = await failedLoginLimit(request, { increment: false })
      // A peek counts nothing: the budget is used up once `emailMax` failures are recorded.
      return !status.isAllowed && status.remaining <= 0 ? Math.max(1, status.ttlInSeconds) : 0
    },
    async record (request: FastifyRequest) {
      await failedLoginLimit(request)
    }
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x' })
