import { Type, type Static } from '@sinclair/typebox'
import { PasswordSchema, PasswordToCheckSchema, UserSchema } from './common.js'

// A protected GET route must declare `secret_token`, or validation would not
// know it and the token could not be read from the query string.
export const AccessTokenQuerySchema = Type.Object({
  secret_token: Type.Optional(Type.String({
    description: 'The access token, for clients that cannot set a header. GET routes only; the Authorization header wins when both are present.'
  }))
})
export type AccessTokenQuery = Static<typeof AccessTokenQuerySchema>

export const ProfileResponseSchema = Type.Object({
  message: Type.Literal('You made it to the secure route'),
  user: UserSchema
}, { description: 'The signed-in user.' })
export type ProfileResponse = Static<typeof ProfileResponseSchema>

export const SessionSchema = Type.Object({
  id: Type.String({ description: 'The session id, also the `sid` claim of its access tokens.' }),
  createdAt: Type.String({ format: 'date-time', description: 'Login time.' }),
  lastUsedAt: Type.String({ format: 'date-time', description: 'Last refresh (or login).' }),
  expiresAt: Type.String({ format: 'date-time', description: 'Absolute end of the session.' }),
  userAgent: Type.String({ description: 'User-Agent of the login request (empty when none was sent).' }),
  ip: Type.String({ description: 'Client address of the login request.' }),
  current: Type.Boolean({ description: 'True for the session of the access token used for this request.' })
})

export const SessionsResponseSchema = Type.Object({
  sessions: Type.Array(SessionSchema, { description: 'Live sessions, most recently used first.' })
}, { description: 'The user\'s live sessions.' })

export const SessionParamsSchema = Type.Object({
  id: Type.String({ maxLength: 64, description: 'A session id from GET /user/sessions.' })
})
export type SessionParams = Static<typeof SessionParamsSchema>

export const ChangePasswordBodySchema = Type.Object({
  currentPassword: PasswordToCheckSchema,
  newPassword: PasswordSchema
}, { additionalProperties: false, title: 'ChangePassword' })
export type ChangePasswordBody = Static<typeof ChangePasswordBodySchema>
