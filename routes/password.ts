import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { RateLimitedError, ResetCodeInvalidError } from '../errors.js'
import { BadRequestResponse, BodyRouteResponses, errorResponse } from '../schemas/common.js'
import { AcceptedResponseSchema, EmailRequestBodySchema, MessageRequestsLimitedResponse, ResetPasswordBodySchema } from '../schemas/email.js'
import { consumes, normaliseEmail } from './normalise-email.js'
import { nextWholeSecond } from '../plugins/sessions/revocation-feed.js'
import { sendNoContent } from './no-content.js'
import { limitMessageRequests } from './message-requests.js'

const FORGOT_ANSWER = 'If an account has this address, a message with a reset code is on its way.'

/** Account recovery by email: a code (or a link) sent to the account's address sets a new password. */
const passwordRoutes: FastifyPluginAsyncTypebox = async function passwordRoutes (fastify) {
  fastify.addHook('preValidation', normaliseEmail)

  fastify.post('/password/forgot', {
    config: { rateLimit: {} },
    schema: {
      tags: ['recovery'],
      summary: 'Ask for a password-reset code by email',
      description: 'Answers 202 with the same body, in about the same time, whether or not an account has the address; a reset message (a code, and a link when PASSWORD_RESET_URL is set) is stored for delivery only for a known one. Asking again replaces the previous code.',
      consumes,
      body: EmailRequestBodySchema,
      response: {
        202: AcceptedResponseSchema,
        400: BadRequestResponse,
        429: MessageRequestsLimitedResponse,
        ...BodyRouteResponses
      }
    }
  }, async function forgotPassword (request, reply) {
    const { email } = request.body
    await limitMessageRequests(fastify, request, reply, email, 'password_reset_request')
    const user = await fastify.usersRepository.findByEmail(email)
    if (user === null) {
      await fastify.emailCodes.imitateIssue()
      fastify.recordAuthEvent(request, { event: 'password_reset_request', outcome: 'unknown_email' })
    } else {
      await fastify.accountMessages.sendPasswordReset(user)
      fastify.recordAuthEvent(request, { event: 'password_reset_request', outcome: 'queued', userId: user.id })
    }
    return reply.code(202).send({ message: FORGOT_ANSWER })
  })

  fastify.post('/password/reset', {
    config: { rateLimit: {} },
    schema: {
      tags: ['recovery'],
      summary: 'Set a new password with the code (or the link token) of a reset message',
      description: 'Stores the new password, revokes every session of the account (they appear in GET /revocations), and queues a "your password was changed" notice. A code is single-use, expires (PASSWORD_RESET_CODE_TTL_SECONDS) and dies after 5 tries; wrong codes count as failed logins against the account.',
      consumes,
      body: ResetPasswordBodySchema,
      response: {
        204: Type.Null({ description: 'The password is changed; every session is over.' }),
        400: BadRequestResponse,
        401: errorResponse('The code or token is wrong, used, expired or dead (the same answer for an unknown address).', ['RESET_CODE_INVALID']),
        429: errorResponse('Too many requests from this client, or too many wrong codes for this account; see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function resetPassword (request, reply) {
    const { body } = request
    const attempt = 'email' in body ? await fastify.failedLogins.start(request, body.email) : undefined
    if (attempt !== undefined && attempt.retryAfterSeconds > 0) {
      fastify.recordAuthEvent(request, { event: 'password_reset', outcome: 'rate_limited' })
      reply.header('retry-after', String(attempt.retryAfterSeconds))
      throw new RateLimitedError()
    }
    const proof = 'token' in body ? { token: body.token } : { email: body.email, code: body.code }
    const code = await fastify.emailCodes.redeem(['password_reset'], proof)
    const user = code === null ? null : await fastify.usersRepository.findById(code.userId)
    // A code sent to an address the account no longer has proves nothing.
    if (code === null || user === null || user.email !== code.email) {
      fastify.recordAuthEvent(request, { event: 'password_reset', outcome: 'invalid_code', ...(user ? { userId: user.id } : {}) })
      throw new ResetCodeInvalidError()
    }
    await attempt?.succeeded()
    // The code came back from the address: it is verified. Sessions begun
    // before are refused at their next refresh even if the sweep below fails
    // half-way; a login racing this one ends itself (it sees the new version).
    // One instant for the user's record and the feed's entry: tokens issued from now on carry an iat no earlier than it.
    const notBefore = nextWholeSecond()
    const credentialsVersion = await fastify.usersRepository.resetPassword(user.id, await fastify.passwordHasher.hash(body.newPassword), notBefore)
    const revoked = await fastify.sessionsRepository.revokeUser(user.id, 'password_reset', { keepCredentialsVersion: credentialsVersion, notBefore })
    await fastify.emailCodes.revokeOfUser(user.id, ['password_reset'])
    await fastify.accountMessages.notifyPasswordChanged(user.email)
    fastify.recordAuthEvent(request, { event: 'password_reset', outcome: 'success', userId: user.id, revokedSessions: revoked })
    return sendNoContent(reply)
  })
}

export default fp(passwordRoutes, { name: 'password-routes', encapsulate: true, dependencies: ['password-hasher', 'users-repository', 'sessions-repository', 'email-codes', 'account-messages', 'rate-limit', 'metrics'] })
