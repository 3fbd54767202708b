import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ClientRecord } from '../plugins/clients-repository.js'
import { InternalErrorResponse, ServiceUnavailableResponse, errorResponse } from '../schemas/common.js'
import {
  IntrospectionRequestSchema, IntrospectionResponseSchema, OAuthErrorSchema, TokenRequestSchema, TokenResponseSchema, type IntrospectionRequest, type TokenRequest
} from '../schemas/oauth.js'
import { isClientToken } from '../plugins/jwt.js'

type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope'

/** RFC 6749 5.2, with its headers: never cached, and a Basic challenge on invalid_client. */
function oauthError (reply: FastifyReply, error: OAuthErrorCode, description: string, realm: string) {
  if (error === 'invalid_client') reply.code(401).header('www-authenticate', `Basic realm="${realm}", charset="UTF-8"`)
  else reply.code(400)
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({ error, error_description: description })
}

type PresentedClient = { id: string, secret: string } | { problem: 'invalid_request' | 'invalid_client', description: string }

/** The client's id and secret from HTTP Basic (RFC 6749 2.3.1: each form-urlencoded) or the body; never both. */
function presentedClient (request: FastifyRequest, body: { client_id?: string, client_secret?: string }): PresentedClient {
  const header = request.headers.authorization
  const inBody = body.client_id !== undefined || body.client_secret !== undefined
  if (header !== undefined) {
    if (inBody) return { problem: 'invalid_request', description: 'Authenticate the client one way: HTTP Basic or client_id and client_secret, not both' }
    const encoded = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header)?.[1]
    const decoded = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return { problem: 'invalid_client', description: 'Malformed HTTP Basic credentials' }
    try {
      return { id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')), secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')) }
    } catch {
      return { problem: 'invalid_client', description: 'Malformed HTTP Basic credentials' }
    }
  }
  if (body.client_id === undefined || body.client_secret === undefined) return { problem: 'invalid_client', description: 'Client authentication is required' }
  return { id: body.client_id, secret: body.client_secret }
}

/** The scopes granted: all of the client's when none are asked, else the asked ones if the client has each; null otherwise. */
function grantedScopes (client: ClientRecord, requested: string | undefined): string[] | null {
  if (requested === undefined || requested.trim() === '') return client.scopes
  const asked = [...new Set(requested.split(' ').filter((scope) => scope !== ''))]
  return asked.every((scope) => client.scopes.includes(scope)) ? asked : null
}

/** OAuth 2.0 endpoints for service clients (RFC 6749 4.4). */
const oauthRoutes: FastifyPluginAsyncTypebox<{ realm: string }> = async function oauthRoutes (fastify, { realm }) {
  fastify.addSchema(OAuthErrorSchema)
  const OAuthErrorResponse = (description: string) => Type.Ref(OAuthErrorSchema, { description })

  fastify.post('/oauth/token', {
    config: { rateLimit: {} },
    attachValidation: true,
    schema: {
      tags: ['oauth'],
      summary: 'A client-credentials token for a service client (RFC 6749 4.4)',
      description: 'The client authenticates with HTTP Basic (client id and secret, each form-urlencoded) or with client_id and client_secret in the form. `scope` may narrow the client\'s scopes. Answers are never cached (Cache-Control: no-store). Errors have the RFC 6749 5.2 shape.',
      security: [{ clientBasic: [] }, {}],
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: TokenRequestSchema,
      response: {
        200: TokenResponseSchema,
        400: OAuthErrorResponse('invalid_request (a missing, repeated or malformed parameter), unsupported_grant_type, or invalid_scope (a scope the client does not have).'),
        401: OAuthErrorResponse('invalid_client: unknown client, wrong or expired secret, or no client authentication; with WWW-Authenticate: Basic.'),
        429: errorResponse('Too many token requests from this address, or for this client (CLIENT_TOKEN_RATE_MAX); see Retry-After.', ['RATE_LIMITED']),
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function token (request, reply) {
    const body = (request.body ?? {}) as TokenRequest
    if (request.validationError !== undefined || typeof body !== 'object') {
      fastify.recordAuthEvent(request, { event: 'client_token', outcome: 'invalid_request' })
      return oauthError(reply, 'invalid_request', 'The request is missing a parameter, repeats one, or has one of the wrong form', realm)
    }
    const presented = presentedClient(request, body)
    if ('problem' in presented) {
      fastify.recordAuthEvent(request, { event: 'client_token', outcome: presented.problem })
      return oauthError(reply, presented.problem, presented.description, realm)
    }
    const client = await fastify.clientsRepository.authenticate(presented.id, presented.secret)
    if (client === null) {
      fastify.recordAuthEvent(request, { event: 'client_token', outcome: 'invalid_client' })
      return oauthError(reply, 'invalid_client', 'Unknown client or wrong secret', realm)
    }
    if (body.grant_type === undefined) return oauthError(reply, 'invalid_request', 'grant_type is required', realm)
    if (body.grant_type !== 'client_credentials') {
      fastify.recordAuthEvent(request, { event: 'client_token', outcome: 'unsupported_grant_type', clientId: client.id })
      return oauthError(reply, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported', realm)
    }
    const scopes = grantedScopes(client, body.scope)
    if (scopes === null) {
      fastify.recordAuthEvent(request, { event: 'client_token', outcome: 'invalid_scope', clientId: client.id })
      return oauthError(reply, 'invalid_scope', 'A requested scope is not one of the client\'s', realm)
    }
    const retryAfter = await fastify.clientTokenRequests.count(client.id)
    if (retryAfter > 0) {
      reply.header('retry-after', String(retryAfter))
      return reply.code(429).send({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: `Too many tokens for this client, retry in ${retryAfter} seconds` })
    }
    const scope = scopes.join(' ')
    const { token, expiresIn } = fastify.issueClientToken({ clientId: client.id, scope, ...(client.audience === null ? {} : { audience: client.audience }) })
    fastify.recordAuthEvent(request, { event: 'client_token', outcome: 'issued', clientId: client.id })
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope })
  })

  /**
   * What a token is now: its signature and claims, then what may have
   * happened since it was signed, read from the database (the session, the
   * user, the client), so a revocation shows at once.
   */
  async function introspect (token: string) {
    let claims
    try {
      claims = fastify.verifyAnyToken(token)
    } catch {
      return { active: false }
    }
    const common = { sub: claims.sub, exp: claims.exp, iat: claims.iat, iss: claims.iss, aud: claims.aud, token_type: 'access_token' as const }
    if (isClientToken(claims)) {
      if (await fastify.clientsRepository.findById(claims.client_id) === null) return { active: false }
      return { active: true, ...common, client_id: claims.client_id, scope: claims.scope }
    }
    const [session, user] = await Promise.all([
      fastify.sessionsRepository.findLive(claims.sub, claims.sid),
      fastify.usersRepository.findById(claims.sub)
    ])
    if (session === null || user === null || user.disabled) return { active: false }
    return { active: true, ...common, email: claims.email, roles: claims.roles ?? [], sid: claims.sid }
  }

  fastify.post('/oauth/introspect', {
    config: { rateLimit: {} },
    attachValidation: true,
    schema: {
      tags: ['oauth'],
      summary: 'Token introspection for services that would rather ask than verify (RFC 7662)',
      description: 'A service client (HTTP Basic, or client_id and client_secret in the form) asks about `token`: a user\'s or a client\'s access token. `active: false` says nothing more. Answers are never cached.',
      security: [{ clientBasic: [] }, {}],
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: IntrospectionRequestSchema,
      response: {
        200: IntrospectionResponseSchema,
        400: OAuthErrorResponse('invalid_request: no token, or a parameter of the wrong form.'),
        401: OAuthErrorResponse('invalid_client: the asking client did not authenticate; with WWW-Authenticate: Basic.'),
        429: errorResponse('Too many requests from this address; see Retry-After.', ['RATE_LIMITED']),
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function introspection (request, reply) {
    const body = (request.body ?? {}) as IntrospectionRequest
    if (request.validationError !== undefined || typeof body !== 'object') {
      return oauthError(reply, 'invalid_request', 'The request is missing a parameter, repeats one, or has one of the wrong form', realm)
    }
    const presented = presentedClient(request, body)
    if ('problem' in presented) return oauthError(reply, presented.problem, presented.description, realm)
    if (await fastify.clientsRepository.authenticate(presented.id, presented.secret) === null) {
      return oauthError(reply, 'invalid_client', 'Unknown client or wrong secret', realm)
    }
    if (body.token === undefined || body.token === '') return oauthError(reply, 'invalid_request', 'token is required', realm)
    return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(await introspect(body.token))
  })
}

export default fp(oauthRoutes, { name: 'oauth-routes', encapsulate: true, dependencies: ['jwt', 'clients-repository', 'users-repository', 'sessions-repository', 'rate-limit', 'metrics'] })
