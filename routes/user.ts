import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { AccessTokenClaims } from '../plugins/jwt.js'
import { EmailTakenError, InvalidCurrentPasswordError, RateLimitedError, SessionNotFoundError, SessionRevokedError } from '../errors.js'
import { createdAtOf, type UserRecord } from '../plugins/users-repository.js'
import {
  BadRequestResponse, BodyRouteResponses, InternalErrorResponse, LiveSessionUnauthorizedResponse, ServiceUnavailableResponse,
  errorResponse
} from '../schemas/common.js'
import {
  AccessTokenQuerySchema, ChangePasswordBodySchema, ProfileResponseSchema, SessionParamsSchema, SessionsResponseSchema,
  type ProfileResponse
} from '../schemas/user.js'
import { AcceptedResponseSchema, ChangeEmailBodySchema } from '../schemas/email.js'
import { DeleteAccountBodySchema } from '../schemas/admin.js'
import { consumes, normaliseEmail } from './normalise-email.js'
import { sendNoContent } from './no-content.js'

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { queryToken: [] }]
// A token in a URL must never authorise a change: writes take the header only.
const headerOnly: Array<Record<string, string[]>> = [{ bearerAuth: [] }]

const NoContent = Type.Null({ description: 'Done.' })

/** Routes that need an access token. Not wrapped in fastify-plugin, so the hook stays here. */
const userRoutes: FastifyPluginAsyncTypebox = async function userRoutes (fastify) {
  fastify.addHook('preHandler', fastify.authenticate)

  /**
   * Access tokens are stateless, so the profile honours them until they
   * expire; the routes that manage the account also require the token's
   * session to be alive (one database read), so a revoked session cannot
   * change a password or end other sessions.
   */
  async function requireLiveSession (request: FastifyRequest) {
    if (await fastify.sessionsRepository.findLive(request.user.sub, request.user.sid) === null) throw new SessionRevokedError()
  }

  /**
   * The signed-in user, once `password` is theirs. Wrong passwords count
   * against the account like failed logins (a stolen access token must not
   * give unlimited guesses); each outcome is an auth event of `event`.
   */
  async function userWithPassword (request: FastifyRequest, reply: FastifyReply, password: string, event: 'password_change' | 'account_deletion' | 'email_change_request'): Promise<UserRecord> {
    const userId = request.user.sub
    const user = await fastify.usersRepository.findById(userId)
    if (user === null) throw new SessionRevokedError()
    const attempt = await fastify.failedLogins.start(request, user.email)
    if (attempt.retryAfterSeconds > 0) {
      fastify.recordAuthEvent(request, { event, outcome: 'rate_limited', userId })
      reply.header('retry-after', String(attempt.retryAfterSeconds))
      throw new RateLimitedError()
    }
    if (!(await fastify.passwordHasher.verify(password, user.passwordHash)).matches) {
      fastify.recordAuthEvent(request, { event, outcome: 'invalid_current_password', userId })
      throw new InvalidCurrentPasswordError()
    }
    await attempt.succeeded()
    return user
  }

  // With the verified-token cache on, every request with a token gets the same
  // claims object, so its profile is built and serialised (by the route's
  // response schema) once per token, not once per request.
  const profileJson = new WeakMap<AccessTokenClaims, string>()

  fastify.get('/profile', {
    schema: {
      tags: ['user'],
      summary: 'The signed-in user, read from the access token (no database call)',
      description: 'A token of a session revoked on any replica is refused within REVOCATION_SYNC_INTERVAL_MS (the replica\'s in-memory revocation state). When this replica has not read that state for longer than REVOCATION_STALENESS_BOUND_SECONDS, 503 REVOCATION_STATE_STALE.',
      security,
      querystring: AccessTokenQuerySchema,
      response: {
        200: ProfileResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('Missing, malformed, tampered, expired or otherwise invalid access token, or one of a revoked session.', ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED']),
        500: InternalErrorResponse,
        503: errorResponse('This replica cannot vouch that the session is not revoked: its revocation state is not read yet, or too old.', ['REVOCATION_STATE_UNAVAILABLE', 'REVOCATION_STATE_STALE'])
      }
    }
  }, function profile (request, reply) {
    // A revoked session's token stops here too, within the revocation state's
    // sync interval, still without a database read; a state too old to vouch for it fails closed.
    fastify.revocationState.assertCurrent()
    if (fastify.revocationState.isRevoked(request.user)) throw new SessionRevokedError()
    let json = profileJson.get(request.user)
    if (json === undefined) {
      const { sub, email } = request.user
      const body: ProfileResponse = {
        message: 'You made it to the secure route',
        user: { id: sub, email, emailVerified: request.user.email_verified === true, createdAt: createdAtOf(sub).toISOString() }
      }
      json = reply.serialize(body) as string
      profileJson.set(request.user, json)
    }
    // A string with a JSON content type is sent as it is. Not async: no promise to settle.
    reply.header('content-type', 'application/json; charset=utf-8').send(json as unknown as ProfileResponse)
  })

  fastify.get('/sessions', {
    preHandler: requireLiveSession,
    schema: {
      tags: ['user'],
      summary: 'The live sessions of the signed-in user',
      security,
      querystring: AccessTokenQuerySchema,
      response: {
        200: SessionsResponseSchema,
        400: BadRequestResponse,
        401: LiveSessionUnauthorizedResponse,
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function listSessions (request) {
    const sessions = await fastify.sessionsRepository.listLive(request.user.sub)
    return {
      sessions: sessions.map((session) => ({
        id: session.id,
        createdAt: session.createdAt.toISOString(),
        lastUsedAt: session.lastUsedAt.toISOString(),
        expiresAt: session.expiresAt.toISOString(),
        userAgent: session.userAgent,
        ip: session.ip,
        current: session.id === request.user.sid
      }))
    }
  })

  fastify.delete('/sessions/:id', {
    preHandler: requireLiveSession,
    schema: {
      tags: ['user'],
      summary: 'Revoke one of the signed-in user\'s sessions (the current one too)',
      security: headerOnly,
      params: SessionParamsSchema,
      response: {
        204: NoContent,
        400: BadRequestResponse,
        401: LiveSessionUnauthorizedResponse,
        404: errorResponse('No live session with this id belongs to the user (unknown and foreign ids answer alike).', ['SESSION_NOT_FOUND']),
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function deleteSession (request, reply) {
    const session = await fastify.sessionsRepository.findLive(request.user.sub, request.params.id)
    if (session === null) throw new SessionNotFoundError()
    if (await fastify.sessionsRepository.revoke(session.id, 'session_deleted')) {
      fastify.recordAuthEvent(request, { event: 'session_revoked', outcome: 'by_user', userId: request.user.sub, sessionId: session.id })
    }
    return sendNoContent(reply)
  })

  fastify.delete('/sessions', {
    preHandler: requireLiveSession,
    schema: {
      tags: ['user'],
      summary: 'Revoke every session of the signed-in user, the current one included',
      security: headerOnly,
      response: {
        204: NoContent,
        401: LiveSessionUnauthorizedResponse,
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function deleteAllSessions (request, reply) {
    const revoked = await fastify.sessionsRepository.revokeAllOfUser(request.user.sub, 'all_sessions_deleted')
    fastify.recordAuthEvent(request, { event: 'session_revoked', outcome: 'by_user', userId: request.user.sub, revokedSessions: revoked })
    return sendNoContent(reply)
  })

  fastify.put('/password', {
    preHandler: requireLiveSession,
    config: { rateLimit: {} },
    schema: {
      tags: ['user'],
      summary: 'Change the password; every other session is revoked',
      security: headerOnly,
      consumes,
      body: ChangePasswordBodySchema,
      response: {
        204: NoContent,
        400: BadRequestResponse,
        401: errorResponse('Invalid access token, ended session, or wrong current password.',
          ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED', 'INVALID_CURRENT_PASSWORD']),
        429: errorResponse('Too many requests from this client, or too many wrong current passwords for this account; see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function changePassword (request, reply) {
    const { sub: userId, sid: sessionId } = request.user
    const user = await userWithPassword(request, reply, request.body.currentPassword, 'password_change')
    const credentialsVersion = await fastify.usersRepository.changePassword(userId, await fastify.passwordHasher.hash(request.body.newPassword))
    // Every session created under an earlier password ends, but this one. A
    // login that checked the old password and creates its session after this
    // sweep sees the new version when it reads the user again, and ends itself.
    const revoked = await fastify.sessionsRepository.revokeAllOfUser(userId, 'password_changed', { exceptSessionId: sessionId, keepCredentialsVersion: credentialsVersion })
    await fastify.accountMessages.notifyPasswordChanged(user.email)
    fastify.recordAuthEvent(request, { event: 'password_change', outcome: 'success', userId, revokedSessions: revoked })
    return sendNoContent(reply)
  })

  fastify.delete('/', {
    // DELETE /user, not /user/.
    prefixTrailingSlash: 'no-slash',
    preHandler: requireLiveSession,
    config: { rateLimit: {} },
    schema: {
      tags: ['user'],
      summary: 'Delete the signed-in user\'s account (password required): every session revoked, personal data gone',
      security: headerOnly,
      consumes,
      body: DeleteAccountBodySchema,
      response: {
        204: NoContent,
        400: BadRequestResponse,
        401: errorResponse('Invalid access token, ended session, or wrong password.',
          ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED', 'INVALID_CURRENT_PASSWORD']),
        429: errorResponse('Too many requests from this client, or too many wrong passwords for this account; see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function deleteAccount (request, reply) {
    const { sub: userId } = request.user
    const user = await userWithPassword(request, reply, request.body.password, 'account_deletion')
    const revoked = await fastify.removeAccount(user)
    fastify.recordAuthEvent(request, { event: 'account_deletion', outcome: 'success', userId, revokedSessions: revoked })
    return sendNoContent(reply)
  })

  fastify.put('/email', {
    preHandler: requireLiveSession,
    preValidation: normaliseEmail,
    config: { rateLimit: {} },
    schema: {
      tags: ['user'],
      summary: 'Change the email address: a code goes to the new one, a notice to the current one',
      description: 'Nothing changes yet: a verification message goes to `newEmail`, and the account moves to it when that code is confirmed at POST /email/verify (with the new address). A notice goes to the current address. Asking again replaces the previous code.',
      security: headerOnly,
      consumes,
      body: ChangeEmailBodySchema,
      response: {
        202: AcceptedResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('Invalid access token, ended session, or wrong password.',
          ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED', 'INVALID_CURRENT_PASSWORD']),
        409: errorResponse('The new address is already an account\'s (this one\'s included).', ['EMAIL_TAKEN']),
        429: errorResponse('Too many requests from this client, or too many wrong passwords for this account; see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function changeEmail (request, reply) {
    const { sub: userId } = request.user
    const { newEmail, password } = request.body
    const user = await userWithPassword(request, reply, password, 'email_change_request')
    if (newEmail === user.email || await fastify.usersRepository.findByEmail(newEmail) !== null) {
      fastify.recordAuthEvent(request, { event: 'email_change_request', outcome: 'email_taken', userId })
      throw new EmailTakenError()
    }
    await fastify.accountMessages.sendEmailChange(user, newEmail)
    fastify.recordAuthEvent(request, { event: 'email_change_request', outcome: 'queued', userId })
    return reply.code(202).send({ message: 'A message with a code is on its way to the new address; the address changes when the code is confirmed.' })
  })
}

export default fp(userRoutes, { name: 'user-routes', encapsulate: true, dependencies: ['jwt', 'password-hasher', 'users-repository', 'sessions-repository', 'account-messages', 'account-removal', 'revocation-state', 'rate-limit', 'metrics'] })
