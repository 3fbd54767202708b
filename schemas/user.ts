import { Type, type Static } from '@sinclair/typebox'
import { UserSchema } from './common.js'

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
})
export type ProfileResponse = Static<typeof ProfileResponseSchema>
