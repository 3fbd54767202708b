import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TokenExpiredError, TokenInvalidError, TokenMissingError } from '../errors.js'

/** What the service signs; `iat`, `exp`, `iss` and `aud` are added by the signer. */
export interface AccessTokenPayload {
  sub: string
  email: string
  jti: string
}

export interface AccessTokenClaims extends AccessTokenPayload {
  iat: number
  exp: number
  iss: string
  aud: string
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenPayload
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: verifies the access token and sets `request.user`, or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Signs an access token for a user. */
    issueAccessToken: (user: { id: string, email: string }) => { token: string, expiresIn: number }
  }
}

export interface JwtPluginOptions {
  secret: string
  secretIsEphemeral: boolean
  issuer: string
  audience: string
  accessTokenTtlSeconds: number
  allowQueryToken: boolean
}

const ALGORITHM = 'HS256'
const BEARER = /^Bearer +([^\s]+)$/i

/**
 * The token lookup, in the contract's order: the Authorization header when
 * present (even if it is malformed: it is never silently skipped), then
 * `secret_token`, which is honoured on GET only, since a token in a URL leaks
 * into logs and history and must not authorise a change.
 */
export function createTokenExtractor (allowQueryToken: boolean) {
  return function extractAccessToken (request: FastifyRequest): string | undefined {
    const header = request.headers.authorization
    if (header !== undefined) return BEARER.exec(header)?.[1]
    if (!allowQueryToken || request.method !== 'GET') return undefined
    const token = (request.query as { secret_token?: unknown } | undefined)?.secret_token
    return typeof token === 'string' && token !== '' ? token : undefined
  }
}

async function jwtPlugin (fastify: FastifyInstance, options: JwtPluginOptions) {
  if (options.secretIsEphemeral) {
    fastify.log.warn('!!! JWT_SECRET is not set: using an ephemeral secret. Tokens die with this process and other replicas reject them. Set JWT_SECRET (>= 32 bytes) outside local development. !!!')
  }

  await fastify.register(fastifyJwt, {
    secret: options.secret,
    sign: {
      algorithm: ALGORITHM,
      iss: options.issuer,
      aud: options.audience,
      expiresIn: options.accessTokenTtlSeconds
    },
    verify: {
      // Pinning the algorithm refuses `alg: none` and any key-confusion trick.
      algorithms: [ALGORITHM],
      allowedIss: options.issuer,
      allowedAud: options.audience,
      requiredClaims: ['sub', 'email', 'jti', 'iat', 'exp', 'iss', 'aud'],
      extractToken: createTokenExtractor(options.allowQueryToken)
    }
  })

  fastify.decorate('issueAccessToken', function issueAccessToken (user: { id: string, email: string }) {
    const token = fastify.jwt.sign({ sub: user.id, email: user.email, jti: randomUUID() })
    return { token, expiresIn: options.accessTokenTtlSeconds }
  })

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest, reply: FastifyReply) {
    try {
      await request.jwtVerify()
    } catch (error) {
      const code = (error as { code?: string }).code
      request.log.debug({ reason: code }, 'access token refused')
      reply.header('www-authenticate', `Bearer realm="${options.issuer}"`)
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') throw new TokenExpiredError()
      // @fastify/jwt answers "nothing extracted" with a 400; the contract wants a 401.
      if (code === 'FST_JWT_BAD_REQUEST' && request.headers.authorization === undefined) throw new TokenMissingError()
      throw new TokenInvalidError()
    }
  })
}

export default fp(jwtPlugin, { name: 'jwt', fastify: '5.x' })
