import createError from '@fastify/error'

// Every error the service raises on purpose, with the stable `code` clients
// switch on. The OpenAPI document lists these per route (schemas/common.ts).

export const EmailTakenError = createError('EMAIL_TAKEN', 'An account with this email already exists', 409)

export const InvalidCredentialsError = createError('INVALID_CREDENTIALS', 'Invalid email or password', 401)

export const TokenMissingError = createError('TOKEN_MISSING', 'An access token is required', 401)

export const TokenInvalidError = createError('TOKEN_INVALID', 'The access token is invalid', 401)

export const TokenExpiredError = createError('TOKEN_EXPIRED', 'The access token has expired', 401)

export const DatabaseUnavailableError = createError('DATABASE_UNAVAILABLE', 'The database is unavailable, try again later', 503)

export const RefreshTokenInvalidError = createError('REFRESH_TOKEN_INVALID', 'The refresh token is invalid or its session has ended', 401)

export const RefreshTokenReusedError = createError('REFRESH_TOKEN_REUSED', 'The refresh token was already used; the session has been revoked', 401)

export const SessionExpiredError = createError('SESSION_EXPIRED', 'The session has expired; log in again', 401)

export const SessionRevokedError = createError('SESSION_REVOKED', 'The session of this access token has ended', 401)

export const SessionNotFoundError = createError('SESSION_NOT_FOUND', 'No such session', 404)

export const InvalidCurrentPasswordError = createError('INVALID_CURRENT_PASSWORD', 'The current password is wrong', 401)

export const RateLimitedError = createError('RATE_LIMITED', 'Too many failed logins for this account; retry later', 429)

export const FragmentInRequestTargetError = createError('INVALID_REQUEST_TARGET', 'The request target must not contain a fragment (#)', 400)

export const InvalidCursorError = createError('INVALID_CURSOR', 'The cursor is not one this service issued, or the feed has not reached it; poll without a cursor to start over', 400)

export const TooManyMessagesError = createError('RATE_LIMITED', 'Too many messages were asked for this address; retry later', 429)

export const EmailNotVerifiedError = createError('EMAIL_NOT_VERIFIED', 'Confirm your email address first: a code was sent to it (ask for another at POST /email/verification)', 403)

export const ResetCodeInvalidError = createError('RESET_CODE_INVALID', 'The reset code or link is wrong, used, expired or dead; ask for a new one', 401)

export const VerificationCodeInvalidError = createError('VERIFICATION_CODE_INVALID', 'The verification code or link is wrong, used, expired or dead; ask for a new one', 401)

export const ForbiddenError = createError('FORBIDDEN', 'The access token does not carry the role this route needs', 403)

export const AccountDisabledError = createError('ACCOUNT_DISABLED', 'This account is disabled', 403)

export const UserNotFoundError = createError('USER_NOT_FOUND', 'No such user', 404)

export const ClientNotFoundError = createError('CLIENT_NOT_FOUND', 'No such client', 404)

export const RevocationStateUnavailableError = createError('REVOCATION_STATE_UNAVAILABLE', 'The revocation state has not been read yet; retry shortly', 503)

export const RevocationStateStaleError = createError('REVOCATION_STATE_STALE', 'The revocation state has not been read for too long to vouch for a token; retry shortly', 503)

export const InsufficientScopeError = createError('INSUFFICIENT_SCOPE', 'This route needs a service client\'s access token with the scope "%s"', 401)

export const TooManyStreamsError = createError('TOO_MANY_STREAMS', 'This client has as many revocation streams open as it may; close one first', 429)

export const StreamsFullError = createError('STREAMS_FULL', 'This replica serves as many revocation streams as it can; retry shortly (another replica may have room)', 503)

export const ErrorCodes = {
  notFound: 'ROUTE_NOT_FOUND',
  internal: 'INTERNAL_SERVER_ERROR'
} as const
