/** Why a token was refused. `code` matches the auth service's own error codes where one exists. */
export type VerificationErrorCode =
  | 'TOKEN_MALFORMED'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_BAD_SIGNATURE'
  | 'TOKEN_UNKNOWN_KEY'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_AUDIENCE'
  | 'TOKEN_ALGORITHM_NOT_ALLOWED'
  | 'TOKEN_INVALID_CLAIMS'
  | 'TOKEN_REVOKED'
  | 'REVOCATION_STATE_STALE'
  | 'JWKS_UNAVAILABLE'

/** Base class of every refusal: `instanceof VerificationError` catches them all. */
export class VerificationError extends Error {
  readonly code: VerificationErrorCode
  constructor (code: VerificationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

export class MalformedTokenError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_MALFORMED', 'The token is not a well-formed JWT', options) }
}

export class TokenExpiredError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_EXPIRED', 'The token has expired', options) }
}

export class TokenNotYetValidError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_NOT_YET_VALID', 'The token is not valid yet', options) }
}

export class BadSignatureError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_BAD_SIGNATURE', 'The token signature does not verify', options) }
}

export class UnknownKeyError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_UNKNOWN_KEY', 'The token names a key the auth service does not publish', options) }
}

export class WrongIssuerError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_WRONG_ISSUER', 'The token was issued by someone else', options) }
}

export class WrongAudienceError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_WRONG_AUDIENCE', 'The token is meant for another audience', options) }
}

export class AlgorithmNotAllowedError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('TOKEN_ALGORITHM_NOT_ALLOWED', 'The token uses an algorithm that is not allowed', options) }
}

export class InvalidClaimsError extends VerificationError {
  constructor (message: string, options?: { cause?: unknown }) { super('TOKEN_INVALID_CLAIMS', message, options) }
}

export class TokenRevokedError extends VerificationError {
  constructor () { super('TOKEN_REVOKED', 'The session of this token has been revoked') }
}

export class JwksUnavailableError extends VerificationError {
  constructor (options?: { cause?: unknown }) { super('JWKS_UNAVAILABLE', 'The key set could not be fetched', options) }
}

/** The revocation feed has not been read for longer than the staleness bound: no token is accepted until it is (fail closed). */
export class RevocationStateStaleError extends VerificationError {
  constructor () { super('REVOCATION_STATE_STALE', 'The revocation state is too old to vouch for any token; retry shortly') }
}
