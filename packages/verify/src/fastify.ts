import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createVerifier, isClientToken, VerificationError, type TokenClaims, type Verifier, type VerifierOptions } from './index.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified claims (a user's, or with `acceptClientTokens` a service client's), set by `authenticate`; null on routes without it. */
    auth: TokenClaims | null
  }
  interface FastifyInstance {
    /** preHandler: verifies the access token and sets `request.auth`, or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /**
     * preHandler after `authenticate`: a service client's token with every
     * one of these scopes passes; anything else is 403 INSUFFICIENT_SCOPE
     * (RFC 6750 3.1).
     */
    requireScopes: (...scopes: string[]) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** preHandler after `authenticate`: a user's token with every one of these roles passes; anything else is 403 FORBIDDEN. */
    requireRoles: (...roles: string[]) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    accessTokenVerifier: Verifier
  }
}

export interface AuthVerifyPluginOptions extends VerifierOptions {
  /** Also accept `?secret_token=` on GET requests (the Authorization header wins). Default false. */
  allowQueryToken?: boolean
}

const BEARER = /^Bearer +([^\s]+)$/i

/** RFC 6750 3: a refused token gets `error="invalid_token"`; a request without one, the plain challenge. */
function unauthorized (reply: FastifyReply, code: string, message: string) {
  const challenge = code === 'TOKEN_MISSING' ? 'Bearer' : 'Bearer error="invalid_token"'
  return reply.code(401).header('www-authenticate', challenge).send({ statusCode: 401, code, error: 'Unauthorized', message })
}

/**
 * Verifies auth-service access tokens in a Fastify service: register it, then
 * add `preHandler: fastify.authenticate` to a route (or a whole plugin) and
 * read `request.auth`. Refusals are 401s in the auth service's error shape.
 */
async function authVerifyPlugin (fastify: FastifyInstance, options: AuthVerifyPluginOptions) {
  const verifier = createVerifier({
    ...options,
    onError: options.onError ?? ((error) => fastify.log.warn({ err: error }, 'following the auth service\'s revocation feed failed'))
  })
  fastify.decorate('accessTokenVerifier', verifier)
  fastify.decorateRequest('auth', null)
  fastify.addHook('onClose', async () => { verifier.close() })
  // Start with the feed read once, so no revoked session slips through at
  // start-up: when that read fails, so does the registration (and the start).
  try {
    await verifier.ready()
  } catch (error) {
    verifier.close()
    throw new Error('the auth service\'s revocation feed could not be read; refusing to start without it', { cause: error })
  }

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization
    let token: string | undefined
    if (header !== undefined) {
      token = BEARER.exec(header)?.[1]
      if (token === undefined) return unauthorized(reply, 'TOKEN_INVALID', 'Malformed Authorization header')
    } else if (options.allowQueryToken === true && request.method === 'GET') {
      const fromQuery = (request.query as { secret_token?: unknown } | undefined)?.secret_token
      if (typeof fromQuery === 'string' && fromQuery !== '') token = fromQuery
    }
    if (token === undefined) return unauthorized(reply, 'TOKEN_MISSING', 'An access token is required')
    try {
      request.auth = await verifier.verify(token)
    } catch (error) {
      if (!(error instanceof VerificationError)) throw error
      if (error.code === 'JWKS_UNAVAILABLE') {
        request.log.warn({ err: error }, 'cannot verify tokens: the key set is unavailable')
        return reply.code(503).send({ statusCode: 503, code: 'JWKS_UNAVAILABLE', error: 'Service Unavailable', message: 'Tokens cannot be verified right now' })
      }
      if (error.code === 'REVOCATION_STATE_STALE') {
        request.log.warn({ lagMs: verifier.revocationStatus().lagMs }, 'refusing tokens: the revocation feed has not been read for too long')
        return reply.code(503).send({ statusCode: 503, code: 'REVOCATION_STATE_STALE', error: 'Service Unavailable', message: error.message })
      }
      const code = error.code === 'TOKEN_EXPIRED' || error.code === 'TOKEN_REVOKED' ? error.code : 'TOKEN_INVALID'
      return unauthorized(reply, code, error.message)
    }
  })

  fastify.decorate('requireScopes', function requireScopes (...scopes: string[]) {
    return async function hasScopes (request: FastifyRequest, reply: FastifyReply) {
      const auth = request.auth
      if (auth === null) return unauthorized(reply, 'TOKEN_MISSING', 'An access token is required')
      const granted = isClientToken(auth) ? auth.scope.split(' ') : []
      if (!scopes.every((scope) => granted.includes(scope))) {
        return forbidden(reply, 'INSUFFICIENT_SCOPE', `This route needs the scopes: ${scopes.join(' ')}`, `Bearer error="insufficient_scope", scope="${scopes.join(' ')}"`)
      }
    }
  })

  fastify.decorate('requireRoles', function requireRoles (...roles: string[]) {
    return async function hasRoles (request: FastifyRequest, reply: FastifyReply) {
      const auth = request.auth
      if (auth === null) return unauthorized(reply, 'TOKEN_MISSING', 'An access token is required')
      const held = isClientToken(auth) ? [] : auth.roles ?? []
      if (!roles.every((role) => held.includes(role))) return forbidden(reply, 'FORBIDDEN', `This route needs the roles: ${roles.join(', ')}`)
    }
  })
}

function forbidden (reply: FastifyReply, code: string, message: string, challenge?: string) {
  if (challenge !== undefined) reply.header('www-authenticate', challenge)
  return reply.code(403).send({ statusCode: 403, code, error: 'Forbidden', message })
}

export const authVerify = fp(authVerifyPlugin, { name: '@auth-service/verify', fastify: '5.x' })
export default authVerify
