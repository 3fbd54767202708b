import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import {
  AccountDisabledError, EmailNotVerifiedError, EmailTakenError, InvalidCredentialsError, RateLimitedError, RefreshTokenInvalidError, RefreshTokenReusedError, SessionExpiredError
} from '../errors.js'
import type { SessionRecord } from '../plugins/sessions-repository.js'
import type { UserRecord } from '../plugins/users-repository.js'
import { CredentialsSchema, LoginResponseSchema, LogoutBodySchema, RefreshTokenBodySchema, SignupResponseSchema, type LoginResponse } from '../schemas/auth.js'
import { BadRequestResponse, BodyRouteResponses, TooManyRequestsResponse, errorResponse } from '../schemas/common.js'
import { consumes, normaliseEmail } from './normalise-email.js'
import { sendNoContent } from './no-content.js'

// The per-IP limit of @fastify/rate-limit, with the configured max and window.
const rateLimited = { rateLimit: {} }

const MAX_USER_AGENT_LENGTH = 256

function sessionOf (result: { sessionId?: string }) {
  return result.sessionId === undefined ? {} : { sessionId: result.sessionId }
}

/** The body of /login and /token/refresh: a fresh access token (with the user's current address) and the session's refresh token. */
function tokensFor (fastify: FastifyInstance, user: UserRecord, session: SessionRecord, refreshToken: string): LoginResponse {
  const { token, expiresIn } = fastify.issueAccessToken({ userId: user.id, email: user.email, emailVerified: user.emailVerified, roles: fastify.rolesOf(user), sessionId: session.id, notBefore: user.sessionsNotBefore })
  return {
    token,
    tokenType: 'Bearer',
    expiresIn,
    refreshToken,
    refreshExpiresIn: Math.max(0, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000))
  }
}

/**
 * A session begun before the user's last password reset, under an earlier
 * password, is over even if the reset's sweep of sessions did not reach it.
 */
function outlivedReset (user: UserRecord, session: SessionRecord): boolean {
  return user.sessionsNotBefore !== null && session.createdAt < user.sessionsNotBefore && session.credentialsVersion !== user.credentialsVersion
}

const authRoutes: FastifyPluginAsyncTypebox<{ requireEmailVerification: boolean }> = async function authRoutes (fastify, { requireEmailVerification }) {
  fastify.addHook('preValidation', normaliseEmail)

  fastify.post('/signup', {
    config: rateLimited,
    schema: {
      tags: ['accounts'],
      summary: 'Create an account',
      consumes,
      body: CredentialsSchema,
      response: {
        201: SignupResponseSchema,
        400: BadRequestResponse,
        409: errorResponse('The email is already registered.', ['EMAIL_TAKEN']),
        429: TooManyRequestsResponse,
        ...BodyRouteResponses
      }
    }
  }, async function signup (request, reply) {
    const { email, password } = request.body
    const passwordHash = await fastify.passwordHasher.hash(password)
    let user
    try {
      user = await fastify.usersRepository.create({ email, passwordHash })
    } catch (error) {
      if (error instanceof EmailTakenError) fastify.recordAuthEvent(request, { event: 'signup', outcome: 'email_taken' })
      throw error
    }
    try {
      await fastify.accountMessages.sendVerification(user)
    } catch (error) {
      // No account without its verification message: taken back, so a retry of the signup can succeed.
      await fastify.usersRepository.deleteUnverified(user.id).catch((cleanup: unknown) => {
        request.log.error({ err: cleanup, userId: user.id }, 'a signup whose verification message could not be stored was not taken back')
      })
      throw error
    }
    fastify.recordAuthEvent(request, { event: 'signup', outcome: 'success', userId: user.id })
    return reply.code(201).send({
      message: 'Signup successful',
      user: { id: user.id, email: user.email, emailVerified: user.emailVerified, createdAt: user.createdAt.toISOString() }
    })
  })

  fastify.post('/login', {
    config: rateLimited,
    schema: {
      tags: ['accounts'],
      summary: 'Exchange email and password for an access token',
      consumes,
      body: CredentialsSchema,
      response: {
        200: LoginResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('Unknown email or wrong password (the two are indistinguishable).', ['INVALID_CREDENTIALS']),
        403: errorResponse('The account is disabled, or REQUIRE_EMAIL_VERIFICATION is on and its address is not verified yet (both only after a correct password); nothing is issued.', ['ACCOUNT_DISABLED', 'EMAIL_NOT_VERIFIED']),
        429: errorResponse('Too many requests from this client, or too many failed attempts at this account (from this address, or from all); see Retry-After.', ['RATE_LIMITED']),
        ...BodyRouteResponses
      }
    }
  }, async function login (request, reply) {
    const { email, password } = request.body
    const attempt = await fastify.failedLogins.start(request, email)
    if (attempt.retryAfterSeconds > 0) {
      fastify.recordAuthEvent(request, { event: 'login', outcome: 'rate_limited' })
      reply.header('retry-after', String(attempt.retryAfterSeconds))
      throw new RateLimitedError()
    }
    const user = await fastify.usersRepository.findByEmail(email)
    const { matches, needsRehash } = user === null
      ? { matches: await fastify.passwordHasher.verifyAgainstDummy(password), needsRehash: false }
      : await fastify.passwordHasher.verify(password, user.passwordHash)
    if (user === null || !matches) {
      fastify.recordAuthEvent(request, { event: 'login', outcome: 'invalid_credentials', ...(user ? { userId: user.id } : {}) })
      throw new InvalidCredentialsError()
    }
    await attempt.succeeded()
    if (user.disabled) {
      fastify.recordAuthEvent(request, { event: 'login', outcome: 'account_disabled', userId: user.id })
      throw new AccountDisabledError()
    }
    if (requireEmailVerification && !user.emailVerified) {
      fastify.recordAuthEvent(request, { event: 'login', outcome: 'email_not_verified', userId: user.id })
      throw new EmailNotVerifiedError()
    }
    if (needsRehash) {
      await fastify.usersRepository.upgradePasswordHash(user.id, user.passwordHash, await fastify.passwordHasher.hash(password))
      request.log.info({ event: 'password_rehash', userId: user.id }, 'password hash upgraded to the configured cost')
    }
    const { session, refreshToken } = await fastify.sessionsRepository.create({
      userId: user.id,
      email: user.email,
      credentialsVersion: user.credentialsVersion,
      userAgent: (request.headers['user-agent'] ?? '').slice(0, MAX_USER_AGENT_LENGTH),
      ip: request.ip
    })
    // The password was checked against what was read before the comparison.
    // A change committed since then may have swept the sessions before this
    // one existed: read again, now that it does, and end it if so.
    const current = await fastify.usersRepository.findById(user.id)
    if (current === null || current.credentialsVersion !== user.credentialsVersion) {
      await fastify.sessionsRepository.revoke(session.id, 'password_changed')
      fastify.recordAuthEvent(request, { event: 'login', outcome: 'invalid_credentials', userId: user.id })
      throw new InvalidCredentialsError()
    }
    fastify.recordAuthEvent(request, { event: 'login', outcome: 'success', userId: user.id, sessionId: session.id })
    return tokensFor(fastify, current, session, refreshToken)
  })

  fastify.post('/token/refresh', {
    config: rateLimited,
    schema: {
      tags: ['accounts'],
      summary: 'Exchange a refresh token for new tokens (the refresh token rotates)',
      description: 'Each use rotates the refresh token. The same token presented again within REFRESH_GRACE_SECONDS of its rotation answers with the same successor (parallel tabs, retries), as long as that successor is still the current one; presented later, it is treated as theft and the whole session is revoked.',
      consumes,
      body: RefreshTokenBodySchema,
      response: {
        200: LoginResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('The refresh token is unknown, its session ended or expired, or it was reused after rotation (the session is then revoked).',
          ['REFRESH_TOKEN_INVALID', 'SESSION_EXPIRED', 'REFRESH_TOKEN_REUSED']),
        429: TooManyRequestsResponse,
        ...BodyRouteResponses
      }
    }
  }, async function refresh (request) {
    // The user as they are now (a changed or verified address) goes into the
    // new access token; read before the rotation commits, so that a failure
    // here leaves the refresh token as it was.
    const subject: { user?: UserRecord } = {}
    const result = await fastify.sessionsRepository.rotate(request.body.refreshToken, async (session) => {
      const user = await fastify.usersRepository.findById(session.userId)
      if (user === null) return 'account_deleted'
      if (user.disabled) return 'account_disabled'
      if (outlivedReset(user, session)) return 'password_reset'
      subject.user = user
      return undefined
    })
    switch (result.outcome) {
      case 'rotated':
      case 'grace':
        fastify.recordAuthEvent(request, { event: 'refresh', outcome: result.outcome, userId: result.session.userId, sessionId: result.session.id })
        return tokensFor(fastify, subject.user!, result.session, result.refreshToken)
      case 'reused':
        fastify.recordAuthEvent(request, { event: 'refresh', outcome: 'reuse_detected', ...sessionOf(result) })
        throw new RefreshTokenReusedError()
      case 'expired':
        fastify.recordAuthEvent(request, { event: 'refresh', outcome: 'session_expired', ...sessionOf(result) })
        throw new SessionExpiredError()
      default:
        fastify.recordAuthEvent(request, { event: 'refresh', outcome: 'invalid' })
        throw new RefreshTokenInvalidError()
    }
  })

  fastify.post('/logout', {
    schema: {
      tags: ['accounts'],
      summary: 'End the session of a refresh token',
      description: 'Revokes the session: its refresh tokens stop working at once. Access tokens already issued stay valid until they expire, except for services that follow GET /revocations. Idempotent: an unknown or already revoked token, whatever its shape, also answers 204 (RFC 7009 2.2); 400 only for a missing or non-string refreshToken.',
      consumes,
      body: LogoutBodySchema,
      response: {
        204: Type.Null({ description: 'The session is over (or never existed).' }),
        400: BadRequestResponse,
        ...BodyRouteResponses
      }
    }
  }, async function logout (request, reply) {
    const sessionId = await fastify.sessionsRepository.findSessionIdByRefreshToken(request.body.refreshToken)
    if (sessionId !== null && await fastify.sessionsRepository.revoke(sessionId, 'logout')) {
      fastify.recordAuthEvent(request, { event: 'logout', outcome: 'success', sessionId })
    }
    return sendNoContent(reply)
  })
}

export default fp(authRoutes, { name: 'auth-routes', encapsulate: true, dependencies: ['password-hasher', 'users-repository', 'sessions-repository', 'jwt', 'roles', 'rate-limit', 'metrics', 'account-messages'] })
