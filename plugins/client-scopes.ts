import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InsufficientScopeError, TokenInvalidError } from '../errors.js'
import { isClientToken, type ClientTokenClaims } from './jwt.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook: 401 unless the Authorization header holds the token of
     * a service client that still exists, granted `scope` (a user's token holds
     * no scope). One line on a route: `onRequest: fastify.requireClientScope('revocations:read')`.
     */
    requireClientScope: (scope: string) => (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** The service client's claims, set by `requireClientScope`. */
    serviceClient?: ClientTokenClaims
  }
}

async function clientScopesPlugin (fastify: FastifyInstance) {
  fastify.decorateRequest('serviceClient', undefined)

  fastify.decorate('requireClientScope', function requireClientScope (scope: string) {
    return async function hasClientScope (request: FastifyRequest) {
      const claims = fastify.verifyHeaderToken(request)
      if (!isClientToken(claims) || !claims.scope.split(' ').includes(scope)) throw new InsufficientScopeError(scope)
      // The client list is this replica's in-memory copy: without a current one, a deleted client cannot be told apart.
      fastify.revocationState.assertCurrent()
      if (!await fastify.revocationState.confirmClient(claims.client_id)) throw new TokenInvalidError()
      request.serviceClient = claims
    }
  })
}

export default fp(clientScopesPlugin, { name: 'client-scopes', fastify: '5.x', dependencies: ['jwt', 'revocation-state'] })
