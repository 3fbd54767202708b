import fp from 'fastify-plugin'
import fastifyHelmet from '@fastify/helmet'
import fastifyCors from '@fastify/cors'
import fastifyUnderPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'

export interface HttpHardeningOptions {
  corsOrigins: string[]
  maxEventLoopDelayMs: number
}

/**
 * Security headers (@fastify/helmet), CORS for the configured origins only
 * (@fastify/cors; none by default, so browsers on other origins get no access),
 * and load shedding (@fastify/under-pressure): while the event loop lags more
 * than the limit, requests get a 503 instead of queueing until every one times out.
 */
async function httpHardeningPlugin (fastify: FastifyInstance, options: HttpHardeningOptions) {
  await fastify.register(fastifyHelmet)
  if (options.corsOrigins.length > 0) {
    await fastify.register(fastifyCors, { origin: options.corsOrigins, methods: ['GET', 'POST', 'PUT', 'DELETE'], maxAge: 600 })
  }
  if (options.maxEventLoopDelayMs > 0) {
    await fastify.register(fastifyUnderPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      retryAfter: 10
    })
  }
}

export default fp(httpHardeningPlugin, { name: 'http-hardening', fastify: '5.x' })
