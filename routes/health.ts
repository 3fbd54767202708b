import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthOkSchema, HealthUnavailableSchema } from '../schemas/health.js'

const healthRoutes: FastifyPluginAsyncTypebox = async function healthRoutes (fastify) {
  fastify.get('/health/live', {
    // Load shedding must not fail liveness: an orchestrator would restart a
    // replica that is only busy.
    config: { pressureHandler: () => undefined },
    schema: {
      tags: ['operations'],
      summary: 'Liveness: the process serves requests',
      response: { 200: HealthOkSchema }
    }
  }, async function live () {
    return { status: 'ok' as const }
  })

  fastify.get('/health/ready', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: the database answers and its indexes exist',
      response: { 200: HealthOkSchema, 503: HealthUnavailableSchema }
    }
  }, async function ready (_request, reply) {
    const databaseReady = await fastify.databaseIsReachable() &&
      await Promise.all([fastify.usersRepository.ensureIndexes(), fastify.sessionsRepository.ensureIndexes()]).then(() => true, () => false)
    if (!databaseReady) return reply.code(503).send({ status: 'unavailable' as const, reason: 'database' })
    return { status: 'ok' as const }
  })
}

export default fp(healthRoutes, { name: 'health-routes', encapsulate: true, dependencies: ['mongodb', 'users-repository', 'sessions-repository'] })
