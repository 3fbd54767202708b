import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { SessionRevokedError, TokenInvalidError } from '../errors.js'
import type { FastifyReply } from 'fastify'
import { isClientToken, type TokenClaims } from '../plugins/jwt.js'
import { InternalErrorResponse, errorResponse } from '../schemas/common.js'
import { sendNoContent } from './no-content.js'

/**
 * GET /auth/verify, the forward-auth check of a gateway (nginx auth_request,
 * Traefik ForwardAuth, Envoy ext_authz): one request per request the gateway
 * lets through, so it answers from the signature (cached), this replica's
 * in-memory revocation state and its list of clients, not the database (but
 * once for a client created since the replica's last read).
 * A disabled or deleted user's sessions are revoked, so their tokens fail here too.
 */
/** Who the caller is, as the gateway passes it on: only the headers that apply. */
function identityOf (claims: TokenClaims): Record<string, string> {
  if (isClientToken(claims)) return { 'x-auth-subject': claims.sub, 'x-auth-scopes': claims.scope }
  return {
    'x-auth-subject': claims.sub,
    'x-auth-email': claims.email,
    ...(claims.roles !== undefined && claims.roles.length > 0 ? { 'x-auth-roles': claims.roles.join(',') } : {}),
    'x-auth-session-id': claims.sid
  }
}

const forwardAuthRoutes: FastifyPluginAsyncTypebox = async function forwardAuthRoutes (fastify) {
  // The verified-token cache hands every request with a token the same claims
  // object, so its headers are built once per token, as the profile's body is.
  const identityHeaders = new WeakMap<TokenClaims, Record<string, string>>()

  fastify.get('/auth/verify', {
    schema: {
      tags: ['keys'],
      summary: 'Forward-auth check for gateways: 204 with who the caller is, or 401',
      description: 'Takes the access token from the Authorization header only (a user\'s or a service client\'s). 204 with X-Auth-Subject, and X-Auth-Email, X-Auth-Roles and X-Auth-Session-Id for a user, X-Auth-Scopes for a client. No database read (but one for a service client created since this replica\'s last read): the revocation state is this replica\'s, at most REVOCATION_SYNC_INTERVAL_MS old.',
      security: [{ bearerAuth: [] }, { clientCredentials: [] }],
      response: {
        204: Type.Null({ description: 'The token is valid and not revoked; the X-Auth-* headers say who the caller is.' }),
        401: errorResponse('Missing, invalid or expired token, a revoked session (also: a disabled or deleted user), or a deleted client.', ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED']),
        500: InternalErrorResponse,
        503: errorResponse('This replica has not read the revocation state yet (just started, database down), or not for longer than REVOCATION_STALENESS_BOUND_SECONDS: it cannot vouch for a token. Or the database is unreachable when a client this replica does not know yet must be looked up.', ['REVOCATION_STATE_UNAVAILABLE', 'REVOCATION_STATE_STALE', 'DATABASE_UNAVAILABLE'])
      }
    }
  }, function verify (request, reply) {
    const claims = fastify.verifyHeaderToken(request)
    fastify.revocationState.assertCurrent()
    if (!isClientToken(claims)) {
      if (fastify.revocationState.isRevoked(claims)) throw new SessionRevokedError()
    } else if (!fastify.revocationState.clientExists(claims.client_id)) {
      // A client created since this replica's last read is not in its list yet: the database decides.
      return fastify.revocationState.confirmClient(claims.client_id).then((exists) => {
        if (!exists) throw new TokenInvalidError()
        answer(reply, claims)
      })
    }
    answer(reply, claims)
  })

  function answer (reply: FastifyReply, claims: TokenClaims): void {
    let headers = identityHeaders.get(claims)
    if (headers === undefined) identityHeaders.set(claims, headers = identityOf(claims))
    reply.headers(headers)
    sendNoContent(reply)
  }
}

export default fp(forwardAuthRoutes, { name: 'forward-auth-routes', encapsulate: true, dependencies: ['jwt', 'revocation-state'] })
