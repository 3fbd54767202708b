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
})
export type SignupResponse = Static<typeof SignupResponseSchema>

export const LoginResponseSchema = Type.Object({
  token: Type.String({ description: 'The access token (a JWT).' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires.' })
})
export type LoginResponse = Static<typeof LoginResponseSchema>
