import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RateLimitedError, VerificationCodeInvalidError } from '../errors.js'
import type { CodeRecord } from '../plugins/email-codes.js'
import { createdAtOf, type UserRecord } from '../plugins/users-repository.js'
import { BadRequestResponse, BodyRouteResponses, errorResponse } from '../schemas/common.js'
import { AcceptedResponseSchema, EmailRequestBodySchema, MessageRequestsLimitedResponse, VerifyEmailBodySchema, VerifyEmailResponseSchema } from '../schemas/email.js'
import { consumes, normaliseEmail } from './normalise-email.js'
import { limitMessageRequests } from './message-requests.js'

const VERIFICATION_ANSWER = 'If an account with this address is waiting for verification, a message with a code is on its way.'

/** Verification of an account's address, and confirmation of a new one (an email change). */
const emailRoutes: FastifyPluginAsyncTypebox = async function emailRoutes (fastify) {
  fastify.addHook('preValidation', normaliseEmail)

  fastify.post('/email/verification', {
    config: { rateLimit: {} },
    schema: {
      tags: ['recovery'],
      summary: 'Ask for a new verification code for an account\'s address',
      description: 'Answers 202 with the same body, in about the same time, for an unknown, an already verified or an unverified address; a message is stored for delivery only for an unverified account. Asking again replaces the previous code.',
      consumes,
      body: EmailRequestBodySchema,
      response: {
        202: AcceptedResponseSchema,
        400: BadRequestResponse,
        429: MessageRequestsLimitedResponse,
        ...BodyRouteResponses
      }
    }
  }, async function requestVerification (request, reply) {
    const { email } = request.body
    await limitMessageRequests(fastify, request, reply, email, 'email_verification_request')
    const user = await fastify.usersRepository.findByEmail(email)
    if (user === null || user.emailVerified) {
      await fastify.emailCodes.imitateIssue()
      fastify.recordAuthEvent(request, { event: 'email_verification_request', outcome: 'not_queued', ...(user ? { userId: user.id } : {}) })
    } else {
      await fastify.accountMessages.sendVerification(user)
      fastify.recordAuthEvent(request, { event: 'email_verification_request', outcome: 'queued', userId: user.id })
    }
    return reply.code(202).send({ message: VERIFICATION_ANSWER })
  })

  fastify.post('/email/verify', {
    config: { rateLimit: {} },
    schema: {
      tags: ['recovery'],
      summary: 'Confirm an address with the code (or the link token) of a verification message',
      description: 'For the account\'s own address, marks it verified. For an email change (PUT /user/email), the code went to the new address: confirming it moves the account to that address (verified) and queues a notice to the old one. A code is single-use, expires (EMAIL_VERIFICATION_CODE_TTL_SECONDS) and dies after 5 tries; wrong codes count as failed logins against the address.',
      consumes,
      body: VerifyEmailBodySchema,
      response: {
        200: VerifyEmailResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('The code or token is wrong, used, expired or dead (the same answer for an unknown address).', ['VERIFICATION_CODE_INVALID']),
        409: errorResponse('An email change cannot complete: another account took the new address meanwhile.', ['EMAIL_TAKEN']),
        429: errorResponse('Too many requests from this client, or too many wrong codes for this address; see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function verifyEmail (request, reply) {
    const { body } = request
    const attempt = 'email' in body ? await fastify.failedLogins.start(request, body.email) : undefined
    if (attempt !== undefined && attempt.retryAfterSeconds > 0) {
      fastify.recordAuthEvent(request, { event: 'email_verification', outcome: 'rate_limited' })
      reply.header('retry-after', String(attempt.retryAfterSeconds))
      throw new RateLimitedError()
    }
    const proof = 'token' in body ? { token: body.token } : { email: body.email, code: body.code }
    const code = await fastify.emailCodes.redeem(['email_verification', 'email_change'], proof)
    const user = code === null ? null : await fastify.usersRepository.findById(code.userId)
    if (code === null || user === null || !await confirm(code, user)) {
      fastify.recordAuthEvent(request, { event: 'email_verification', outcome: 'invalid_code', ...(user ? { userId: user.id } : {}) })
      throw new VerificationCodeInvalidError()
    }
    await attempt?.succeeded()
    if (code.purpose === 'email_change') {
      await fastify.emailCodes.revokeOfUser(user.id, ['email_change', 'email_verification', 'password_reset'])
      await fastify.accountMessages.notifyEmailChanged(user.email, code.email)
    }
    fastify.recordAuthEvent(request, { event: 'email_verification', outcome: code.purpose === 'email_change' ? 'email_changed' : 'success', userId: user.id })
    return reply.code(200).send({ user: { id: user.id, email: code.email, emailVerified: true, createdAt: createdAtOf(user.id).toISOString() } })
  })

  /**
   * Applies a redeemed code to its account: verifies the address, or, for an
   * email change, moves the account to the new one. False when the account
   * no longer has the address the code was for (a later change supersedes it).
   */
  async function confirm (code: CodeRecord, user: UserRecord): Promise<boolean> {
    if (code.purpose !== 'email_change') return user.email === code.email && fastify.usersRepository.markEmailVerified(user.id, code.email)
    return user.email === code.previousEmail && fastify.usersRepository.changeEmail(user.id, user.email, code.email)
  }
}

export default fp(emailRoutes, { name: 'email-routes', encapsulate: true, dependencies: ['password-hasher', 'users-repository', 'email-codes', 'account-messages', 'rate-limit', 'metrics'] })
