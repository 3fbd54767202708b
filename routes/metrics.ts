import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

const metricsRoutes: FastifyPluginAsyncTypebox = async function metricsRoutes (fastify) {
  fastify.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics: request counts and latencies per route, auth event outcomes, process metrics',
      description: 'For the scraper inside your network: do not expose it publicly.',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'Prometheus text exposition format.' }) }
    }
  }, async function metrics (_request, reply) {
    reply.header('content-type', fastify.metricsRegistry.contentType)
    return fastify.metricsRegistry.metrics()
  })
}

export default fp(metricsRoutes, { name: 'metrics-routes', encapsulate: true, dependencies: ['metrics'] })
