import { Type, type Static } from '@sinclair/typebox'

export const MAX_PASSWORD_BYTES = 72

export const EmailSchema = Type.String({
  format: 'email',
  maxLength: 254,
  description: 'Trimmed and lower-cased before it is stored or looked up.',
  examples: ['ann@example.com']
})

/**
 * NUL is refused: bcrypt treats "\0" like "", a trap nobody types on purpose.
 * Lone surrogates are refused: they are no characters, and UTF-8 encoding
 * turns each into U+FFFD, so different ones would be one password. (Ajv
 * compiles patterns with the `u` flag: the class matches only unpaired halves.)
 */
const PASSWORD_CHARACTERS = '^[^\\u0000\\ud800-\\udfff]*$'

export const PasswordSchema = Type.String({
  minLength: 8,
  maxLength: MAX_PASSWORD_BYTES,
  // Enforced by the Ajv keyword of the same name (plugins/validation.ts), on
  // the NFC form that is hashed: bcrypt reads only 72 bytes, and a longer
  // password is refused, never silently cut.
  'x-max-bytes': MAX_PASSWORD_BYTES,
  pattern: PASSWORD_CHARACTERS,
  description: `At least 8 characters and at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (in Unicode NFC, the form it is compared in); no NUL character, no lone surrogate.`,
  examples: ['correct horse battery staple']
})

/** A password to check rather than to set: any length the hasher can compare, the same characters. */
export const PasswordToCheckSchema = Type.String({
  minLength: 1,
  maxLength: MAX_PASSWORD_BYTES,
  'x-max-bytes': MAX_PASSWORD_BYTES,
  pattern: PASSWORD_CHARACTERS
})

/** What an id this service issues looks like (a MongoDB ObjectId in lower-case hex). */
export const OBJECT_ID = /^[0-9a-f]{24}$/

export const ObjectIdSchema = Type.String({ pattern: OBJECT_ID.source, description: 'A 24-character hex id.' })

export const UserSchema = Type.Object({
  id: ObjectIdSchema,
  email: Type.String({ format: 'email' }),
  emailVerified: Type.Boolean({ description: 'True once a code sent to this address was confirmed (POST /email/verify) or used for a password reset.' }),
  createdAt: Type.String({ format: 'date-time' })
})
export type User = Static<typeof UserSchema>

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable machine-readable error code.' }),
  error: Type.String({ description: 'HTTP reason phrase.' }),
  message: Type.String({ description: 'Human-readable explanation; never internal details.' })
}, { $id: 'Error', title: 'Error' })
export type ErrorBody = Static<typeof ErrorSchema>

/** An error response documented with the codes a route can answer with at that status. */
export function errorResponse (description: string, codes: string[]) {
  return Type.Ref(ErrorSchema, { description: `${description} Codes: ${codes.map((code) => `\`${code}\``).join(', ')}.` })
}

export const BadRequestResponse = errorResponse(
  'Invalid input: wrong or missing fields, unknown fields, wrong types, malformed body.',
  ['FST_ERR_VALIDATION', 'FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY']
)

/** The 401 of the routes that service clients read with a scope (the revocation feed and stream). */
export const ClientScopeUnauthorizedResponse = errorResponse(
  'Missing, invalid or expired token, a deleted client\'s token, or a token without the route\'s scope (a user\'s token has none).',
  ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE']
)

/** The 401 of the routes that also check, with a read, that the token's session is alive. */
export const LiveSessionUnauthorizedResponse = errorResponse(
  'Missing or invalid access token, or the session of the token has ended.',
  ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED']
)

export const ServiceUnavailableResponse = errorResponse(
  'The database is unreachable, or the service is overloaded; retry later (see Retry-After when present).',
  ['DATABASE_UNAVAILABLE', 'FST_UNDER_PRESSURE']
)

export const PayloadTooLargeResponse = errorResponse('The body is larger than BODY_LIMIT_BYTES.', ['FST_ERR_CTP_BODY_TOO_LARGE'])

export const UnsupportedMediaTypeResponse = errorResponse(
  'The body is neither application/json nor application/x-www-form-urlencoded.',
  ['FST_ERR_CTP_INVALID_MEDIA_TYPE']
)

export const InternalErrorResponse = errorResponse('An unexpected failure; the details are in the service log only.', ['INTERNAL_SERVER_ERROR'])

export const TooManyRequestsResponse = errorResponse('Too many requests from this client; see the Retry-After header.', ['RATE_LIMITED'])

/** What every route that takes a body may also answer: too large, wrong media type, internal error, database down. */
export const BodyRouteResponses = {
  413: PayloadTooLargeResponse,
  415: UnsupportedMediaTypeResponse,
  500: InternalErrorResponse,
  503: ServiceUnavailableResponse
}
