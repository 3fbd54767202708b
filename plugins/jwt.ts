import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { TokenExpiredError, TokenInvalidError, TokenMissingError } from '../errors.js'
import type { PublicJwk, VerificationKey } from '../keys.js'

/** What the service signs; `iat`, `exp`, `iss` and `aud` are added by the signer. */
export interface AccessTokenPayload {
  sub: string
  email: string
  /** The session (refresh-token family) the token belongs to. */
  sid: string
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
    /** Signs an access token for a user's session. */
    issueAccessToken: (subject: { userId: string, email: string, sessionId: string }) => { token: string, expiresIn: number }
    /** The public keys that verify access tokens, as published at /.well-known/jwks.json. */
    jsonWebKeySet: { keys: PublicJwk[] }
  }
}

export type JwtPluginOptions = Config['jwt']
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

/** Picks the public key by the token's `kid`, and refuses any other algorithm than that key's. */
function createPublicKeyLookup (keys: VerificationKey[]) {
  const byKid = new Map(keys.map((key) => [key.kid, key]))
  return async function publicKeyFor (_request: FastifyRequest, token: TokenOrHeader): Promise<string> {
    const header = 'header' in token ? token.header : token
    const key = typeof header.kid === 'string' ? byKid.get(header.kid) : undefined
    if (key === undefined || key.algorithm !== header.alg) throw new Error('no verification key for this kid and algorithm')
    return key.publicKeyPem
  }
}

async function jwtPlugin (fastify: FastifyInstance, options: JwtPluginOptions) {
  if (options.ephemeral) {
    const what = options.algorithm === 'HS256' ? 'JWT_SECRET is not set: using an ephemeral secret' : 'JWT_PRIVATE_KEY is not set: using an ephemeral key pair'
    fastify.log.warn(`!!! ${what}. Tokens die with this process and other replicas reject them. Configure one outside local development (npm run keys:generate). !!!`)
  }

  const claims = {
    allowedIss: options.issuer,
    allowedAud: options.audience,
    requiredClaims: ['sub', 'email', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
    extractToken: createTokenExtractor(options.allowQueryToken)
  }
  const signOptions = { iss: options.issuer, aud: options.audience, expiresIn: options.accessTokenTtlSeconds }

  if (options.algorithm === 'HS256') {
    await fastify.register(fastifyJwt, {
      secret: options.secret!,
      sign: { ...signOptions, algorithm: 'HS256' },
      // Pinning the algorithm refuses `alg: none` and any key-confusion trick.
      verify: { ...claims, algorithms: ['HS256'] }
    })
  } else {
    const signingKey = options.signingKey!
    await fastify.register(fastifyJwt, {
      secret: { private: signingKey.privateKeyPem, public: createPublicKeyLookup(options.verificationKeys) },
      decode: { complete: true },
      sign: { ...signOptions, algorithm: signingKey.algorithm, kid: signingKey.kid },
      verify: { ...claims, algorithms: [...new Set(options.verificationKeys.map((key) => key.algorithm))] }
    })
  }

  fastify.decorate('jsonWebKeySet', { keys: options.verificationKeys.map((key) => key.jwk) })

  fastify.decorate('issueAccessToken', function issueAccessToken ({ userId, email, sessionId }: { userId: string, email: string, sessionId: string }) {
    const token = fastify.jwt.sign({ sub: userId, email, sid: sessionId, jti: randomUUID() })
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
