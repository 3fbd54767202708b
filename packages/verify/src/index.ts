import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import {
  AlgorithmNotAllowedError, BadSignatureError, InvalidClaimsError, JwksUnavailableError, MalformedTokenError,
  TokenExpiredError, TokenNotYetValidError, TokenRevokedError, UnknownKeyError, VerificationError,
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

export interface VerifierOptions {
  /** The service's JWT_ISSUER. */
  issuer: string
  /** The service's JWT_AUDIENCE (or the audience this consumer accepts). */
  audience: string
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
  /** Called with background errors (a failed poll); the poll goes on. Default: ignore. */
  onError?: (error: unknown) => void
}

export interface Verifier {
  /** The token's claims, or a `VerificationError` saying why not. */
  verify: (token: string) => Promise<AccessTokenClaims>
  /** Resolves once the revocation feed has been read once (immediately without one). */
  ready: () => Promise<void>
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
  revoked: Array<{ sid: string, expiresAt: string }>
  cursor: string
  hasMore: boolean
}

/** Polls the revocation feed and remembers revoked sessions until their last access token has expired. */
function createRevocationList (url: URL, intervalMs: number, onError: (error: unknown) => void) {
  const revoked = new Map<string, number>()
  let cursor: string | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

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
      for (const entry of page.revoked) revoked.set(entry.sid, Date.parse(entry.expiresAt))
      cursor = page.cursor
      if (!page.hasMore) break
    }
    const now = Date.now()
    for (const [sid, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sid)
  }

  function schedule () {
    if (closed) return
    timer = setTimeout(() => { poll().catch(onError).finally(schedule) }, intervalMs)
    timer.unref()
  }

  const first = poll().catch(onError).finally(schedule)

  return {
    ready: () => first,
    isRevoked: (sid: string) => revoked.has(sid),
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
    requiredClaims: ['sub', 'sid', 'email', 'jti', 'iat', 'exp']
  }
  const onError = options.onError ?? (() => {})
  const revocations = options.revocationsUrl === undefined
    ? undefined
    : createRevocationList(new URL(options.revocationsUrl), options.revocationsPollIntervalMs ?? 5000, onError)

  return {
    async verify (token: string): Promise<AccessTokenClaims> {
      let claims: AccessTokenClaims
      try {
        const { payload } = await jwtVerify(token, keySet, verifyOptions)
        claims = payload as unknown as AccessTokenClaims
      } catch (error) {
        throw toVerificationError(error)
      }
      for (const name of ['sub', 'sid', 'email', 'jti'] as const) {
        if (typeof claims[name] !== 'string') throw new InvalidClaimsError(`The "${name}" claim must be a string`)
      }
      if (revocations?.isRevoked(claims.sid)) throw new TokenRevokedError()
      return claims
    },
    ready: () => revocations?.ready() ?? Promise.resolve(),
    close: () => revocations?.close()
  }
}
