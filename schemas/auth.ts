import { Type, type Static } from '@sinclair/typebox'
import { EmailSchema, PasswordSchema, UserSchema } from './common.js'

export const CredentialsSchema = Type.Object({
  email: EmailSchema,
  password: PasswordSchema
}, { additionalProperties: false, title: 'Credentials' })
export type Credentials = Static<typeof CredentialsSchema>

export const SignupResponseSchema = Type.Object({
  message: Type.Literal('Signup successful'),
  user: UserSchema
}, { description: 'The account was created.' })
export type SignupResponse = Static<typeof SignupResponseSchema>

export const RefreshTokenSchema = Type.String({
  pattern: '^([A-Za-z0-9_-]{80}|[A-Za-z0-9_-]{43})$',
  description: 'An opaque refresh token (80 characters of base64url holding 256 random bits; 43-character tokens issued by earlier versions are still taken).'
})

export const LoginResponseSchema = Type.Object({
  token: Type.String({ description: 'The access token (a JWT).' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refreshToken: RefreshTokenSchema,
  refreshExpiresIn: Type.Integer({ description: 'Seconds until the session, and so every refresh token of it, expires (absolute, from login).' })
}, { title: 'Tokens', description: 'A new access token, and the session\'s refresh token.' })
export type LoginResponse = Static<typeof LoginResponseSchema>

export const RefreshTokenBodySchema = Type.Object({
  refreshToken: RefreshTokenSchema
}, { additionalProperties: false, title: 'RefreshTokenBody' })
export type RefreshTokenBody = Static<typeof RefreshTokenBodySchema>

/** Logout takes any string: a token of another shape is simply not one of ours, and answers 204 (RFC 7009 2.2). */
export const LogoutBodySchema = Type.Object({
  refreshToken: Type.String({ description: 'The refresh token of the session to end; any string (an unknown one changes nothing).' })
}, { additionalProperties: false, title: 'LogoutBody' })
export type LogoutBody = Static<typeof LogoutBodySchema>
