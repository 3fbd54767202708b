import { createParser } from 'eventsource-parser'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import {
  AlgorithmNotAllowedError, BadSignatureError, InvalidClaimsError, JwksUnavailableError, MalformedTokenError,
  TokenExpiredError, RevocationStateStaleError, TokenNotYetValidError, TokenRevokedError, UnknownKeyError, VerificationError,
  WrongAudienceError, WrongIssuerError
} from './errors.js'

export * from './errors.js'

export type Algorithm = 'EdDSA' | 'ES256' | 'RS256'

/** The claims every token the auth service signs carries (RFC 7519 4.1). */
export interface RegisteredClaims {
  jti: string
  iat: number
  exp: number
  iss: string
  aud: string | string[]
  nbf?: number
}

/** The claims of an auth-service access token. */
export interface AccessTokenClaims extends RegisteredClaims {
  /** The user id. */
  sub: string
  email: string
  /** Whether the user confirmed `email` with a code sent to it (absent on tokens issued before verification existed). */
  email_verified?: boolean
  /** The roles the user holds (absent when none, and on tokens issued before roles existed). */
  roles?: string[]
  /** The session id: what the revocation feed names. */
  sid: string
}

/**
 * A service client's token (client credentials, from the auth service's
 * POST /oauth/token): it names the client, not a user, and carries scopes.
 */
export interface ClientTokenClaims extends RegisteredClaims {
  /** The client id (also in `client_id`). */
  sub: string
  client_id: string
  /** Space-separated scopes. */
  scope: string
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
  /**
   * e.g. `http://auth:3000/revocations`: when set, the verifier refuses tokens
   * of revoked sessions and users, as it hears of them from the feed's stream
   * (`/revocations/stream`, within a second), or by polling the feed while the
   * stream is down.
   */
  revocationsUrl?: string | URL
  /**
   * How the verifier authenticates to the feed, which needs a service
   * client's token with the scope `revocations:read`: e.g.
   * `createClientCredentials({ tokenUrl, clientId, clientSecret })`.
   */
  revocationsCredentials?: TokenSource
  /** Listen to the stream (default true); false: poll only. */
  revocationsStream?: boolean
  /** How often the feed is polled while the stream is down (and how long before the stream is retried), in ms. Default 5000. */
  revocationsPollIntervalMs?: number
  /** A stream that sends nothing (no entry, no heartbeat: the service sends one every 15 s) for this long is dropped and retried. Default 20 000. */
  revocationsStreamIdleTimeoutMs?: number
  /**
   * With a revocation feed: how long the verifier may go without a successful
   * read of it before it refuses every token (`REVOCATION_STATE_STALE`)
   * rather than accept one that may have been revoked meanwhile. It accepts
   * tokens again, by itself, after the next successful read. Default 30 000.
   */
  revocationsStalenessBoundMs?: number
  /** Called with background errors (a failed poll, a dropped stream); following the feed goes on. Default: ignore. */
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
  /** How current the revocation state is: when the feed was last heard from (an entry, a heartbeat, a poll), and whether that is older than the staleness bound. */
  revocationStatus: () => { lastReadAt: number | null, lagMs: number, stale: boolean }
  /** Stops following the feed. */
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

interface RevocationEntry {
  /** A revoked session (`sid`), or every token of a user issued before `notBefore` (`sub`). */
  sid?: string
  sub?: string
  notBefore?: string
  expiresAt: string
}

interface RevocationsPage {
  revoked: RevocationEntry[]
  cursor: string
  hasMore: boolean
}

/** Something that hands out a bearer token for the feed: a `createClientCredentials` client with the scope `revocations:read`. */
export interface TokenSource {
  token: () => Promise<string>
}

interface RevocationListOptions {
  url: URL
  credentials: TokenSource | undefined
  useStream: boolean
  pollIntervalMs: number
  stalenessBoundMs: number
  streamIdleTimeoutMs: number
  onError: (error: unknown) => void
}

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms).unref() })

/**
 * Follows the revocation feed and remembers revoked sessions and users until
 * their last access token has expired: reads the feed once, then listens to
 * its stream (`<feed>/stream`, Server-Sent Events), and polls the feed
 * while the stream is down. Anything heard from either (an entry, a
 * heartbeat, an empty poll) counts as a successful read for the staleness bound.
 */
function createRevocationList (options: RevocationListOptions) {
  const revoked = new Map<string, number>()
  const usersNotBefore = new Map<string, { notBefore: number, expiresAt: number }>()
  let cursor: string | undefined
  let closed = false
  let lastReadAt: number | null = null
  const stopStream = new AbortController()

  async function authorization (): Promise<Record<string, string>> {
    return options.credentials === undefined ? {} : { authorization: `Bearer ${await options.credentials.token()}` }
  }

  function apply (entry: RevocationEntry) {
    if (entry.sid !== undefined) {
      revoked.set(entry.sid, Date.parse(entry.expiresAt))
    } else if (entry.sub !== undefined && entry.notBefore !== undefined) {
      const notBefore = Date.parse(entry.notBefore)
      const known = usersNotBefore.get(entry.sub)
      if (known === undefined || known.notBefore < notBefore) usersNotBefore.set(entry.sub, { notBefore, expiresAt: Date.parse(entry.expiresAt) })
    }
  }

  function heard () {
    const now = Date.now()
    // Forget what no longer matters, at most once a second.
    if (lastReadAt === null || now - lastReadAt >= 1000) {
      for (const [sid, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sid)
      for (const [sub, entry] of usersNotBefore) if (entry.expiresAt <= now) usersNotBefore.delete(sub)
    }
    lastReadAt = now
  }

  /** Whether the feed refused our cursor as ahead of it (its database was restored): then the cursor is dropped, to read the feed whole again. */
  async function droppedStaleCursor (response: Response): Promise<boolean> {
    if (response.status !== 400 || cursor === undefined || (await response.json() as { code?: unknown }).code !== 'INVALID_CURSOR') return false
    cursor = undefined
    return true
  }

  async function poll () {
    // Read on while the feed says more is waiting.
    for (;;) {
      const pageUrl = new URL(options.url)
      if (cursor !== undefined) pageUrl.searchParams.set('since', cursor)
      const response = await fetch(pageUrl, { headers: await authorization(), signal: AbortSignal.timeout(5000) })
      if (await droppedStaleCursor(response)) continue
      if (!response.ok) throw new Error(`revocation feed answered ${response.status}`)
      const page = await response.json() as RevocationsPage
      for (const entry of page.revoked) apply(entry)
      cursor = page.cursor
      if (!page.hasMore) break
    }
    heard()
  }

  /** One connection to the stream, until it ends or goes quiet; whether anything was heard on it. */
  async function listen (): Promise<boolean> {
    const streamUrl = new URL(`${options.url.pathname.replace(/\/$/, '')}/stream`, options.url)
    if (cursor !== undefined) streamUrl.searchParams.set('since', cursor)
    const idle = new AbortController()
    const signal = AbortSignal.any([idle.signal, stopStream.signal])
    const response = await fetch(streamUrl, { headers: { ...await authorization(), accept: 'text/event-stream' }, signal })
    if (await droppedStaleCursor(response)) return false
    if (!response.ok || response.body === null) {
      await response.body?.cancel()
      throw new Error(`revocation stream answered ${response.status}`)
    }
    // A stream that goes quiet (no entry, no heartbeat) is dropped, and the feed polled instead.
    let idleTimer = setTimeout(() => idle.abort(), options.streamIdleTimeoutMs)
    let received = false
    const parser = createParser({
      onEvent (message) {
        if (message.event !== 'revoked') return
        apply(JSON.parse(message.data) as RevocationEntry)
        if (message.id !== undefined) cursor = message.id
      }
    })
    try {
      for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
        clearTimeout(idleTimer)
        idleTimer = setTimeout(() => idle.abort(), options.streamIdleTimeoutMs)
        parser.feed(chunk)
        // Any chunk comes from a replica that reads the feed (it sends nothing else); a message cut in two completes with the next chunk.
        received = true
        heard()
      }
    } catch (error) {
      if (!signal.aborted) throw error
    } finally {
      clearTimeout(idleTimer)
    }
    return received
  }

  async function follow () {
    // `closed` is set by close(), between the awaits below.
    for (;;) {
      if (closed) return
      if (options.useStream) {
        try {
          // A stream that ended after it was heard from (its token expired, a replica stopped) is reopened at once.
          if (await listen()) continue
        } catch (error) {
          if (closed) return
          options.onError(error)
        }
      }
      if (closed) return
      await sleep(options.pollIntervalMs)
      if (closed) return
      // The stream is down (or not used): poll meanwhile.
      await poll().catch(options.onError)
    }
  }

  const first = poll()
  // Reported to onError here; ready() hands the same failure to whoever waits on it.
  first.catch(options.onError)
  first.catch(() => undefined).finally(() => { follow().catch(options.onError) })

  function status () {
    const lagMs = lastReadAt === null ? Number.POSITIVE_INFINITY : Date.now() - lastReadAt
    return { lastReadAt, lagMs, stale: lagMs > options.stalenessBoundMs }
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
      stopStream.abort()
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
    : createRevocationList({
      url: new URL(options.revocationsUrl),
      credentials: options.revocationsCredentials,
      useStream: options.revocationsStream ?? true,
      pollIntervalMs: options.revocationsPollIntervalMs ?? 5000,
      stalenessBoundMs: options.revocationsStalenessBoundMs ?? 30_000,
      streamIdleTimeoutMs: options.revocationsStreamIdleTimeoutMs ?? 20_000,
      onError
    })

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
