import { Type, type Static } from '@sinclair/typebox'

/**
 * RFC 6749 4.4.2: the form of a client-credentials token request. Every field
 * is optional here: a missing or repeated one is answered with the RFC's
 * `invalid_request`, not the service's validation error, and unrecognised
 * parameters are ignored, as 3.2 requires.
 */
export const TokenRequestSchema = Type.Object({
  grant_type: Type.Optional(Type.String({ maxLength: 64, description: 'Must be `client_credentials`.' })),
  scope: Type.Optional(Type.String({ maxLength: 2048, description: 'Space-separated scopes, a subset of the client\'s; all of them when absent.' })),
  client_id: Type.Optional(Type.String({ maxLength: 64, description: 'With client_secret, instead of HTTP Basic.' })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
}, { title: 'ClientCredentialsRequest' })
export type TokenRequest = Static<typeof TokenRequestSchema>

export const TokenResponseSchema = Type.Object({
  access_token: Type.String({ description: 'A JWT signed like users\' tokens: `sub` and `client_id` are the client, `scope`, `aud`, `iss`, `iat`, `exp`, `jti`.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until it expires.' }),
  scope: Type.String({ description: 'The granted scopes, space-separated.' })
}, { title: 'ClientCredentialsToken', description: 'RFC 6749 5.1.' })

export const OAuthErrorSchema = Type.Object({
  error: Type.String({ description: 'RFC 6749 5.2: invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope.' }),
  error_description: Type.String()
}, { $id: 'OAuthError', title: 'OAuthError' })

/** RFC 7662 2.1. */
export const IntrospectionRequestSchema = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 8192, description: 'The token to look at.' })),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64, description: 'Ignored: only access tokens are introspected.' })),
  client_id: Type.Optional(Type.String({ maxLength: 64 })),
  client_secret: Type.Optional(Type.String({ maxLength: 256 }))
}, { title: 'IntrospectionRequest' })
export type IntrospectionRequest = Static<typeof IntrospectionRequestSchema>

export const IntrospectionResponseSchema = Type.Object({
  active: Type.Boolean({ description: 'false for an expired, forged, revoked (session revoked, user disabled or deleted, client deleted) or unknown token; nothing else is said then.' }),
  sub: Type.Optional(Type.String()),
  scope: Type.Optional(Type.String({ description: 'A client\'s token: its scopes.' })),
  client_id: Type.Optional(Type.String({ description: 'A client\'s token: the client.' })),
  roles: Type.Optional(Type.Array(Type.String(), { description: 'A user\'s token: the roles it carries.' })),
  email: Type.Optional(Type.String({ description: 'A user\'s token.' })),
  sid: Type.Optional(Type.String({ description: 'A user\'s token: its session.' })),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  token_type: Type.Optional(Type.Literal('access_token'))
}, { title: 'Introspection', description: 'RFC 7662 2.2.' })
