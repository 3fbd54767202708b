import { Type, type Static } from '@sinclair/typebox'
import { EmailSchema, PasswordSchema, PasswordToCheckSchema, UserSchema, errorResponse } from './common.js'

/** A code as typed: case, spaces and dashes do not matter (`abcd efgh` is `ABCD-EFGH`). */
export const CodeSchema = Type.String({
  minLength: 8,
  maxLength: 32,
  pattern: '^[A-Za-z0-9 -]+$',
  description: 'The code from the message: 8 characters (shown as `ABCD-EFGH`); case, spaces and dashes are ignored.',
  examples: ['K7PM-Q2XH']
})

/** The `token` parameter of a message's link. */
export const LinkTokenSchema = Type.String({
  pattern: '^[A-Za-z0-9_-]{43}$',
  description: 'The `token` query parameter of the link in the message (single-use, 256 random bits).'
})

export const EmailRequestBodySchema = Type.Object({
  email: EmailSchema
}, { additionalProperties: false, title: 'EmailRequest' })
export type EmailRequestBody = Static<typeof EmailRequestBodySchema>

export const AcceptedResponseSchema = Type.Object({
  message: Type.String({ description: 'The same text whether or not an account has the address.' })
}, { description: 'Accepted: when an account calls for it, a message is stored for delivery.' })
export type AcceptedResponse = Static<typeof AcceptedResponseSchema>

export const ResetPasswordBodySchema = Type.Union([
  Type.Object({ email: EmailSchema, code: CodeSchema, newPassword: PasswordSchema }, { additionalProperties: false, title: 'ResetPasswordWithCode' }),
  Type.Object({ token: LinkTokenSchema, newPassword: PasswordSchema }, { additionalProperties: false, title: 'ResetPasswordWithLink' })
], { title: 'ResetPassword' })
export type ResetPasswordBody = Static<typeof ResetPasswordBodySchema>

export const VerifyEmailBodySchema = Type.Union([
  Type.Object({ email: EmailSchema, code: CodeSchema }, { additionalProperties: false, title: 'VerifyEmailWithCode' }),
  Type.Object({ token: LinkTokenSchema }, { additionalProperties: false, title: 'VerifyEmailWithLink' })
], { title: 'VerifyEmail' })
export type VerifyEmailBody = Static<typeof VerifyEmailBodySchema>

export const VerifyEmailResponseSchema = Type.Object({
  user: UserSchema
}, { description: 'The address is confirmed (for an email change: the account now has it).' })
export type VerifyEmailResponse = Static<typeof VerifyEmailResponseSchema>

export const ChangeEmailBodySchema = Type.Object({
  newEmail: EmailSchema,
  password: PasswordToCheckSchema
}, { additionalProperties: false, title: 'ChangeEmail' })
export type ChangeEmailBody = Static<typeof ChangeEmailBodySchema>

/** The 429 of the endpoints that send a message to an address (reset, verification). */
export const MessageRequestsLimitedResponse = errorResponse('Too many requests from this client, or too many messages asked for this address (known or not); see Retry-After.', ['RATE_LIMITED'])
