import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { TokenError, createVerifier } from 'fast-jwt'
import { LRUMap } from 'mnemonist'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { TokenExpiredError, TokenInvalidError, TokenMissingError } from '../errors.js'
import type { PublicJwk } from '../keys.js'
import type { AccessTokenClaims, ClientTokenClaims, TokenClaims } from '@auth-service/verify'
import { OBJECT_ID } from '../schemas/common.js'

/** What the service signs; `iat`, `exp`, `iss` and `aud` are added by the signer. */
export interface AccessTokenPayload {
  sub: string
  email: string
  email_verified: boolean
  roles: string[]
  /** The session (refresh-token family) the token belongs to. */
  sid: string
  jti: string
  /** Set only to issue a token no older than a revocation's notBefore; the signer sets it otherwise. */
  iat?: number
}

/**
 * What a verified token holds: the one claims type, shared with the
 * verification library other services use (a type only: nothing of the
 * library runs here).
 */
export type { AccessTokenClaims, ClientTokenClaims, TokenClaims }

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
    issueAccessToken: (subject: { userId: string, email: string, emailVerified: boolean, roles: string[], sessionId: string, notBefore?: Date | null }) => { token: string, expiresIn: number }
    /**
     * Signs a service client's token (client credentials): `sub` and
     * `client_id` are the client, `scope` its granted scopes, `aud` its
     * audience; no session, no email. Same keys as users' tokens.
     */
    issueClientToken: (client: { clientId: string, scope: string, audience?: string }) => { token: string, expiresIn: number }
    /**
     * Verifies a token of either kind, a user's or a service client's (for
     * introspection): its claims, or
     * TokenExpiredError / TokenInvalidError. Through the same cache.
     */
    verifyAnyToken: (token: string) => TokenClaims
    /**
     * `verifyAnyToken` for the token of the Authorization header, the only
     * place a gateway's check or a service client's read takes it from:
     * TOKEN_MISSING without a header, TOKEN_INVALID for one that is no Bearer token.
     */
    verifyHeaderToken: (request: FastifyRequest) => TokenClaims
    /** The public keys that verify access tokens, as published at /.well-known/jwks.json. */
    jsonWebKeySet: { keys: PublicJwk[] }
  }
}

export type JwtPluginOptions = Config['jwt']

/**
 * The token of `Bearer <token>` (scheme case-insensitive, one or more spaces),
 * or undefined. Whitespace inside the token is left to the verifier, which
 * refuses it like any other malformed token, so no regular expression has to
 * run over the whole header.
 */
function bearerToken (header: string): string | undefined {
  if (!header.startsWith('Bearer ') && (header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ')) return undefined
  let start = 7
  while (header.charCodeAt(start) === 32) start++
  return start < header.length ? header.slice(start) : undefined
}

/**
 * The token lookup, in the contract's order: the Authorization header when
 * present (even if it is malformed: it is never silently skipped), then
 * `secret_token`, which is honoured on GET only, since a token in a URL leaks
 * into logs and history and must not authorise a change.
 */
function createTokenExtractor (allowQueryToken: boolean) {
  return function extractAccessToken (request: FastifyRequest): string | undefined {
    const header = request.headers.authorization
    if (header !== undefined) return bearerToken(header)
    if (!allowQueryToken || request.method !== 'GET') return undefined
    const token = (request.query as { secret_token?: unknown } | undefined)?.secret_token
    return typeof token === 'string' && token !== '' ? token : undefined
  }
}

/** A token's header, parsed on its own (cheap: a few dozen bytes) to pick the key. */
function headerOf (token: string): { kid?: unknown, alg?: unknown } {
  const end = token.indexOf('.')
  if (end <= 0) return {}
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, end), 'base64url').toString())
    return typeof header === 'object' && header !== null ? header : {}
  } catch {
    return {}
  }
}

/**
 * The verification function: a fast-jwt verifier per key, created once, each
 * pinned to its key's single algorithm (so `alg: none`, HMAC-with-a-public-key
 * and any other confusion are refused), chosen by the token's `kid`.
 * @fastify/jwt's request.jwtVerify() rebuilt option objects and went through
 * callbacks and a key lookup on every request.
 */
/** How far ahead of this clock a token's `iat` may be (another replica's clock); beyond it the token is refused. */
const IAT_CLOCK_TOLERANCE_MS = 5000

export function isClientToken (claims: TokenClaims): claims is ClientTokenClaims {
  return 'client_id' in claims
}

const invalidClaim = (message: string) => new TokenError(TokenError.codes.invalidClaimValue, message)

/**
 * Checks what the signature cannot: a token signed with the service's key
 * but not minted by it (a `sub` or `sid` that is no id would reach the
 * database as one), one issued in the future (a wrong clock or a forgery made
 * to outlive its key), and the audience: a user's token has the service's;
 * a service client's token has the client's own, whatever it is.
 */
function checkClaims (claims: TokenClaims, audience: string): TokenClaims {
  if (typeof claims.iat !== 'number' || claims.iat * 1000 > Date.now() + IAT_CLOCK_TOLERANCE_MS) throw invalidClaim('The token was issued in the future')
  if (isClientToken(claims)) {
    if (typeof claims.client_id !== 'string' || claims.sub !== claims.client_id || typeof claims.scope !== 'string') throw invalidClaim('Not a client token this service issues')
    return claims
  }
  if (!OBJECT_ID.test(claims.sub) || !OBJECT_ID.test(claims.sid) || typeof claims.email !== 'string') {
    throw invalidClaim('The token\'s subject or session is not an id this service issues')
  }
  if (claims.aud !== audience) throw new TokenError(TokenError.codes.invalidClaimValue, 'The token has another audience')
  return claims
}

function createSignatureVerifier (options: JwtPluginOptions): (token: string) => TokenClaims {
  const common = {
    allowedIss: options.issuer,
    // The audience is checked by checkClaims: it depends on the kind of token.
    requiredClaims: ['sub', 'jti', 'iat', 'exp', 'iss', 'aud']
  }
  if (options.algorithm === 'HS256') {
    const verify = createVerifier({ ...common, key: options.secret!, algorithms: ['HS256'] }) as (token: string) => TokenClaims
    return (token: string) => checkClaims(verify(token), options.audience)
  }
  const byKid = new Map(options.verificationKeys.map((key) => [
    key.kid,
    createVerifier({ ...common, key: key.publicKeyPem, algorithms: [key.algorithm] }) as (token: string) => TokenClaims
  ]))
  return function verifyWithKeyOfKid (token: string) {
    const { kid } = headerOf(token)
    const verify = typeof kid === 'string' ? byKid.get(kid) : undefined
    if (verify === undefined) throw new TokenError(TokenError.codes.invalidKey, 'No verification key for this kid')
    return checkClaims(verify(token), options.audience)
  }
}

/**
 * The verified-token cache in front of every key's verifier: a token seen
 * before skips the header parse and the signature check until its `exp`.
 * Keyed by the whole token, so an entry serves only the identical token: a
 * valid signature glued to another header or payload misses and goes to the
 * verifier, which refuses it. Only successes are cached, so a refused token is
 * checked again each time and an expired one gets TOKEN_EXPIRED. (fast-jwt's
 * own cache keys by a SHA-256 of the token, which costs more than the lookup
 * it saves.)
 */
function createTokenVerifier (options: JwtPluginOptions): (token: string) => TokenClaims {
  const verifySignature = createSignatureVerifier(options)
  if (options.verifyCacheSize === 0) return verifySignature
  const verified = new LRUMap<string, TokenClaims>(options.verifyCacheSize)
  return function verifyCached (token: string) {
    const cached = verified.get(token)
    if (cached !== undefined && cached.exp * 1000 > Date.now()) return cached
    const claims = verifySignature(token)
    verified.set(token, claims)
    return claims
  }
}

async function jwtPlugin (fastify: FastifyInstance, options: JwtPluginOptions) {
  if (options.ephemeral) {
    const what = options.algorithm === 'HS256' ? 'JWT_SECRET is not set: using an ephemeral secret' : 'JWT_PRIVATE_KEY is not set: using an ephemeral key pair'
    fastify.log.warn(`!!! ${what}. Tokens die with this process and other replicas reject them. Configure one outside local development (npm run keys:generate). !!!`)
  }

  // @fastify/jwt signs (and types request.user); verification is createTokenVerifier's.
  const signOptions = { iss: options.issuer, aud: options.audience, expiresIn: options.accessTokenTtlSeconds }
  if (options.algorithm === 'HS256') {
    await fastify.register(fastifyJwt, { secret: options.secret!, sign: { ...signOptions, algorithm: 'HS256' } })
  } else {
    const signingKey = options.signingKey!
    await fastify.register(fastifyJwt, {
      secret: { private: signingKey.privateKeyPem, public: signingKey.publicKeyPem },
      sign: { ...signOptions, algorithm: signingKey.algorithm, kid: signingKey.kid }
    })
  }
  const verifyToken = createTokenVerifier(options)
  const extractAccessToken = createTokenExtractor(options.allowQueryToken)

  fastify.decorate('jsonWebKeySet', { keys: options.verificationKeys.map((key) => key.jwk) })

  fastify.decorate('issueAccessToken', function issueAccessToken ({ userId, email, emailVerified, roles, sessionId, notBefore }: { userId: string, email: string, emailVerified: boolean, roles: string[], sessionId: string, notBefore?: Date | null }) {
    const payload: AccessTokenPayload = { sub: userId, email, email_verified: emailVerified, roles, sid: sessionId, jti: randomUUID() }
    // A user-wide revocation refuses tokens issued before its notBefore (up to
    // a second ahead): one issued right after it must not look older.
    if (notBefore != null && notBefore.getTime() > Date.now()) payload.iat = notBefore.getTime() / 1000
    const token = fastify.jwt.sign(payload)
    return { token, expiresIn: options.accessTokenTtlSeconds }
  })

  fastify.decorate('issueClientToken', function issueClientToken ({ clientId, scope, audience }: { clientId: string, scope: string, audience?: string }) {
    const payload = { sub: clientId, client_id: clientId, scope, jti: randomUUID() }
    // Not AccessTokenPayload (a user's): the same signer, with the client's own audience.
    const token = fastify.jwt.sign(payload as unknown as AccessTokenPayload, audience === undefined ? undefined : { aud: audience })
    return { token, expiresIn: options.accessTokenTtlSeconds }
  })

  /** The claims, or the service's 401 errors (the reason goes to the debug log). */
  function verifyPresented (token: string, request?: FastifyRequest): TokenClaims {
    try {
      return verifyToken(token)
    } catch (error) {
      const code = (error as { code?: string }).code
      request?.log.debug({ reason: code }, 'access token refused')
      if (code === TokenError.codes.expired) throw new TokenExpiredError()
      throw new TokenInvalidError()
    }
  }

  fastify.decorate('verifyAnyToken', (token: string) => verifyPresented(token))

  fastify.decorate('verifyHeaderToken', function verifyHeaderToken (request: FastifyRequest) {
    const header = request.headers.authorization
    if (header === undefined) throw new TokenMissingError()
    const token = bearerToken(header)
    if (token === undefined) throw new TokenInvalidError()
    return verifyPresented(token)
  })

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    const token = extractAccessToken(request)
    if (token === undefined) {
      // A malformed Authorization header is refused, never skipped for the query.
      throw request.headers.authorization === undefined ? new TokenMissingError() : new TokenInvalidError()
    }
    const claims = verifyPresented(token, request)
    // A service client is no user: the user routes are not for its tokens.
    if (isClientToken(claims)) throw new TokenInvalidError()
    request.user = claims
  })
}

export default fp(jwtPlugin, { name: 'jwt', fastify: '5.x' })
