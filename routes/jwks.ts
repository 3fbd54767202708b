import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { JsonWebKeySetSchema } from '../schemas/jwks.js'

// Consumers also refetch on an unknown `kid`, so a short cache is enough to
// spare the service without slowing a key rotation down.
const CACHE_CONTROL = 'public, max-age=300'

const jwksRoutes: FastifyPluginAsyncTypebox = async function jwksRoutes (fastify) {
  fastify.get('/.well-known/jwks.json', {
    schema: {
      tags: ['keys'],
      summary: 'The public keys that verify access tokens (JWKS)',
      response: { 200: JsonWebKeySetSchema }
    }
  }, async function jwks (_request, reply) {
    reply.header('cache-control', CACHE_CONTROL)
    return fastify.jsonWebKeySet
  })
}

export default fp(jwksRoutes, { name: 'jwks-routes', encapsulate: true, dependencies: ['jwt'] })
