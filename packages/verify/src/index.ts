import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import {
  AlgorithmNotAllowedError, BadSignatureError, InvalidClaimsError, JwksUnavailableError, MalformedTokenError,
  TokenExpiredError, RevocationStateStaleError, TokenNotYetValidError, TokenRevokedError, UnknownKeyError, VerificationError,
  WrongAudienceError, WrongIssuerError
} from './errors.js'

export * from './errors.js'

export type Algorithm = 'EdDSA' | 'ES256' | 'RS256'

/** The claims of an auth-service access token. */
export interface AccessTokenClaims {
  /** The user id. */
  sub: string
  email: string
  /** Whether the user confirmed `email` with a code sent to it (absent on tokens issued before verification existed). */
  email_verified?: boolean
  /** The roles the user holds (absent when none, and on tokens issued before roles existed). */
  roles?: string[]
  /** The session id: what the revocation feed names. */
  sid: string
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string | string[]
  nbf?: number
}

/**
 * A service client's token (client credentials, from the auth service's
 * POST /oauth/token): it names the client, not a user, and carries scopes.
 */
export interface ClientTokenClaims {
  /** The client id (also in `client_id`). */
  sub: string
  client_id: string
  /** Space-separated scopes. */
  scope: string
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string | string[]
  nbf?: number
}

/** Either kind of token the auth service signs. */
export type TokenClaims = AccessTokenClaims | ClientTokenClaims

/** Narrows verified claims to a service client's. */
export function isClientToken (claims: TokenClaims): claims is ClientTokenClaims {
  return 'client_id' in claims && typeof claims.client_id === 'string'
}

export interface VerifierOptions {
  /** The service's JWT_ISSUER. */
  issuer: string
  /** The service's JWT_AUDIENCE, or the audiences this consumer accepts (a service client's tokens carry the client's audience). */
  audience: string | string[]
  /** Also accept service clients' tokens (client credentials). Default false: users' tokens only. */
  acceptClientTokens?: boolean
  /** e.g. `http://auth:3000/.well-known/jwks.json` */
  jwksUrl: string | URL
  /** Allowed signature algorithms; never HMAC or `none`. Default: EdDSA, ES256, RS256. */
  algorithms?: Algorithm[]
  /** Tolerated clock difference for `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockToleranceSeconds?: number
  /**
   * An unknown `kid` refetches the key set, but at most once per this many ms,
   * so a flood of forged kids cannot hammer the auth service. Default 30 000.
   */
  jwksRefetchIntervalMs?: number
  /** The key set is refetched when older than this, which bounds how long a removed key is still trusted. Default 300 000. */
  jwksMaxAgeMs?: number
  /** e.g. `http://auth:3000/revocations`: when set, a background poll refuses tokens of revoked sessions. */
  revocationsUrl?: string | URL
  /** How often the revocation feed is polled, in ms. Default 5000. */
  revocationsPollIntervalMs?: number
  /**
   * With a revocation feed: how long the verifier may go without a successful
   * read of it before it refuses every token (`REVOCATION_STATE_STALE`)
   * rather than accept one that may have been revoked meanwhile. It accepts
   * tokens again, by itself, after the next successful read. Default 30 000.
   */
  revocationsStalenessBoundMs?: number
  /** Called with background errors (a failed poll); the poll goes on. Default: ignore. */
  onError?: (error: unknown) => void
}

export interface Verifier {
  /** The token's claims (a user's; a client's too with `acceptClientTokens`), or a `VerificationError` saying why not. */
  verify: (token: string) => Promise<TokenClaims>
  /**
   * Resolves once the revocation feed has been read once (immediately without
   * one); rejects when that first read fails, so a consumer does not start
   * accepting tokens it cannot check. Polling goes on either way.
   */
  ready: () => Promise<void>
  /** How current the revocation state is: the last successful read of the feed, and whether it is older than the staleness bound. */
  revocationStatus: () => { lastReadAt: number | null, lagMs: number, stale: boolean }
  /** Stops the background poll. */
  close: () => void
}

const DEFAULT_ALGORITHMS: Algorithm[] = ['EdDSA', 'ES256', 'RS256']

function toVerificationError (error: unknown): VerificationError {
  if (error instanceof VerificationError) return error
  if (error instanceof joseErrors.JWTExpired) return new TokenExpiredError({ cause: error })
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return new WrongIssuerError({ cause: error })
    if (error.claim === 'aud') return new WrongAudienceError({ cause: error })
    if (error.claim === 'nbf' || (error.claim === 'iat' && error.reason === 'check_failed')) return new TokenNotYetValidError({ cause: error })
    return new InvalidClaimsError(`Invalid "${error.claim}" claim`, { cause: error })
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new BadSignatureError({ cause: error })
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new UnknownKeyError({ cause: error })
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new AlgorithmNotAllowedError({ cause: error })
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return new JwksUnavailableError({ cause: error })
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JOSENotSupported) {
    return new MalformedTokenError({ cause: error })
  }
  return new JwksUnavailableError({ cause: error })
}

interface RevocationsPage {
  /** A revoked session (`sid`), or every token of a user issued before `notBefore` (`sub`). */
  revoked: Array<{ sid?: string, sub?: string, notBefore?: string, expiresAt: string }>
  cursor: string
  hasMore: boolean
}

/** Polls the revocation feed and remembers revoked sessions until their last access token has expired. */
function createRevocationList (url: URL, intervalMs: number, stalenessBoundMs: number, onError: (error: unknown) => void) {
  const revoked = new Map<string, number>()
  const usersNotBefore = new Map<string, { notBefore: number, expiresAt: number }>()
  let cursor: string | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false
  let lastReadAt: number | null = null

  async function poll () {
    // Read on while the feed says more is waiting.
    for (;;) {
      const pageUrl = new URL(url)
      if (cursor !== undefined) pageUrl.searchParams.set('since', cursor)
      const response = await fetch(pageUrl, { signal: AbortSignal.timeout(5000) })
      if (response.status === 400 && cursor !== undefined && (await response.json() as { code?: unknown }).code === 'INVALID_CURSOR') {
        // The feed is behind our cursor (its database was restored): read it whole again.
        cursor = undefined
        continue
      }
      if (!response.ok) throw new Error(`revocation feed answered ${response.status}`)
      const page = await response.json() as RevocationsPage
      for (const entry of page.revoked) {
        if (entry.sid !== undefined) {
          revoked.set(entry.sid, Date.parse(entry.expiresAt))
        } else if (entry.sub !== undefined && entry.notBefore !== undefined) {
          const notBefore = Date.parse(entry.notBefore)
          const known = usersNotBefore.get(entry.sub)
          if (known === undefined || known.notBefore < notBefore) usersNotBefore.set(entry.sub, { notBefore, expiresAt: Date.parse(entry.expiresAt) })
        }
      }
      cursor = page.cursor
      if (!page.hasMore) break
    }
    const now = Date.now()
    for (const [sid, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sid)
    for (const [sub, entry] of usersNotBefore) if (entry.expiresAt <= now) usersNotBefore.delete(sub)
    lastReadAt = now
  }

  function schedule () {
    if (closed) return
    timer = setTimeout(() => { poll().catch(onError).finally(schedule) }, intervalMs)
    timer.unref()
  }

  const first = poll().finally(schedule)
  // Reported to onError here; ready() hands the same failure to whoever waits on it.
  first.catch(onError)

  function status () {
    const lagMs = lastReadAt === null ? Number.POSITIVE_INFINITY : Date.now() - lastReadAt
    return { lastReadAt, lagMs, stale: lagMs > stalenessBoundMs }
  }

  return {
    ready: () => first,
    status,
    /** The token's session was revoked, or its user was, after the token was issued. */
    isRevoked (claims: { sid: string, sub: string, iat: number }) {
      if (revoked.has(claims.sid)) return true
      const user = usersNotBefore.get(claims.sub)
      return user !== undefined && claims.iat * 1000 < user.notBefore
    },
    close () {
      closed = true
      clearTimeout(timer)
    }
  }
}

/**
 * A verifier of auth-service access tokens, for other services: it checks
 * the signature against the published key set (cached; refetched, rate-
 * limited, on an unknown `kid`), the allowed algorithms, `iss`, `aud`, `exp`
 * and `nbf` (with a small clock tolerance), the claims the service always
 * sets, and, given the revocation feed's URL, that the session is not revoked.
 */
export function createVerifier (options: VerifierOptions): Verifier {
  const keySet = createRemoteJWKSet(new URL(options.jwksUrl), {
    cooldownDuration: options.jwksRefetchIntervalMs ?? 30_000,
    cacheMaxAge: options.jwksMaxAgeMs ?? 300_000
  })
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: options.algorithms ?? DEFAULT_ALGORITHMS,
    clockTolerance: options.clockToleranceSeconds ?? 5,
    requiredClaims: ['sub', 'jti', 'iat', 'exp']
  }
  const onError = options.onError ?? (() => {})
  const revocations = options.revocationsUrl === undefined
    ? undefined
    : createRevocationList(new URL(options.revocationsUrl), options.revocationsPollIntervalMs ?? 5000, options.revocationsStalenessBoundMs ?? 30_000, onError)

  return {
    async verify (token: string): Promise<TokenClaims> {
      let claims: TokenClaims
      try {
        const { payload } = await jwtVerify(token, keySet, verifyOptions)
        claims = payload as unknown as TokenClaims
      } catch (error) {
        throw toVerificationError(error)
      }
      // Fail closed: a state too old to know of recent revocations vouches for nothing.
      if (revocations?.status().stale === true) throw new RevocationStateStaleError()
      if (isClientToken(claims)) {
        if (options.acceptClientTokens !== true) throw new InvalidClaimsError('A service client\'s token is not accepted here')
        if (claims.sub !== claims.client_id || typeof claims.scope !== 'string' || typeof claims.jti !== 'string') {
          throw new InvalidClaimsError('A client token needs "sub" equal to "client_id", and "scope"')
        }
        return claims
      }
      for (const name of ['sub', 'sid', 'email', 'jti'] as const) {
        if (typeof claims[name] !== 'string') throw new InvalidClaimsError(`The "${name}" claim must be a string`)
      }
      if (revocations?.isRevoked(claims) === true) throw new TokenRevokedError()
      return claims
    },
    ready: () => revocations?.ready() ?? Promise.resolve(),
    revocationStatus: () => revocations?.status() ?? { lastReadAt: null, lagMs: 0, stale: false },
    close: () => revocations?.close()
  }
}

export interface ClientCredentialsOptions {
  /** e.g. `http://auth:3000/oauth/token` */
  tokenUrl: string | URL
  clientId: string
  clientSecret: string
  /** Space-separated scopes to ask for (a subset of the client's); all of them when absent. */
  scope?: string
  /** A cached token is replaced this many seconds before it expires. Default 30. */
  refreshMarginSeconds?: number
}

export interface ClientCredentials {
  /** A token for this client: the cached one while it has more than the margin left, else a new one (one request for concurrent callers). */
  token: () => Promise<string>
  /** `fetch` with `Authorization: Bearer <token>`: how one service calls another in one line. */
  fetch: (input: string | URL, init?: RequestInit) => Promise<Response>
}

/** A token request the auth service refused; `error` is the RFC 6749 5.2 code (e.g. `invalid_client`). */
export class ClientCredentialsError extends Error {
  constructor (readonly status: number, readonly error: string, description: string) {
    super(`token request refused (${status} ${error}): ${description}`)
    this.name = 'ClientCredentialsError'
  }
}

/**
 * A service client's side of client credentials (RFC 6749 4.4): gets a token
 * from the auth service with HTTP Basic, caches it until shortly before it
 * expires, and sends it on the calls this service makes to another.
 */
export function createClientCredentials (options: ClientCredentialsOptions): ClientCredentials {
  const marginMs = (options.refreshMarginSeconds ?? 30) * 1000
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`
  let cached: { token: string, renewAt: number } | undefined
  let pending: Promise<string> | undefined

  async function requestToken (): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials', ...(options.scope === undefined ? {} : { scope: options.scope }) })
    const response = await fetch(options.tokenUrl, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body,
      signal: AbortSignal.timeout(10_000)
    })
    const answer = await response.json().catch(() => ({})) as { access_token?: string, expires_in?: number, error?: string, error_description?: string }
    if (!response.ok || typeof answer.access_token !== 'string' || typeof answer.expires_in !== 'number') {
      throw new ClientCredentialsError(response.status, answer.error ?? 'invalid_response', answer.error_description ?? 'no token in the answer')
    }
    cached = { token: answer.access_token, renewAt: Date.now() + Math.max(0, answer.expires_in * 1000 - marginMs) }
    return answer.access_token
  }

  async function token (): Promise<string> {
    if (cached !== undefined && Date.now() < cached.renewAt) return cached.token
    pending ??= requestToken().finally(() => { pending = undefined })
    return pending
  }

  return {
    token,
    async fetch (input, init = {}) {
      const headers = new Headers(init.headers)
      headers.set('authorization', `Bearer ${await token()}`)
      return fetch(input, { ...init, headers })
    }
  }
}
