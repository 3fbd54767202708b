import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { InvalidCredentialsError } from '../errors.js'
import { CredentialsSchema, LoginResponseSchema, SignupResponseSchema } from '../schemas/auth.js'
import {
  BadRequestResponse, InternalErrorResponse, PayloadTooLargeResponse, ServiceUnavailableResponse,
  UnsupportedMediaTypeResponse, errorResponse
} from '../schemas/common.js'

/**
 * ` Ann@Example.COM ` and `ann@example.com` are one account. Normalised before
 * validation, so the format check sees what will be stored.
 */
async function normaliseEmail (request: FastifyRequest) {
  const body = request.body as { email?: unknown } | null | undefined
  if (body !== null && typeof body === 'object' && typeof body.email === 'string') {
    body.email = body.email.trim().toLowerCase()
  }
}

const consumes = ['application/json', 'application/x-www-form-urlencoded']

const authRoutes: FastifyPluginAsyncTypebox = async function authRoutes (fastify) {
  fastify.addHook('preValidation', normaliseEmail)

  fastify.post('/signup', {
    schema: {
      tags: ['accounts'],
      summary: 'Create an account',
      consumes,
      body: CredentialsSchema,
      response: {
        201: SignupResponseSchema,
        400: BadRequestResponse,
        409: errorResponse('The email is already registered.', ['EMAIL_TAKEN']),
        413: PayloadTooLargeResponse,
        415: UnsupportedMediaTypeResponse,
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function signup (request, reply) {
    const { email, password } = request.body
    const passwordHash = await fastify.passwordHasher.hash(password)
    const user = await fastify.usersRepository.create({ email, passwordHash })
    request.log.info({ event: 'signup', userId: user.id }, 'user signed up')
    return reply.code(201).send({
      message: 'Signup successful',
      user: { id: user.id, email: user.email, createdAt: user.createdAt.toISOString() }
    })
  })

  fastify.post('/login', {
    schema: {
      tags: ['accounts'],
      summary: 'Exchange email and password for an access token',
      consumes,
      body: CredentialsSchema,
      response: {
        200: LoginResponseSchema,
        400: BadRequestResponse,
        401: errorResponse('Unknown email or wrong password (the two are indistinguishable).', ['INVALID_CREDENTIALS']),
        413: PayloadTooLargeResponse,
        415: UnsupportedMediaTypeResponse,
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function login (request) {
    const { email, password } = request.body
    const user = await fastify.usersRepository.findByEmail(email)
    if (user === null) {
      await fastify.passwordHasher.verifyAgainstDummy(password)
      request.log.info({ event: 'login', outcome: 'invalid_credentials' }, 'login refused')
      throw new InvalidCredentialsError()
    }
    const { matches, needsRehash } = await fastify.passwordHasher.verify(password, user.passwordHash)
    if (!matches) {
      request.log.info({ event: 'login', outcome: 'invalid_credentials', userId: user.id }, 'login refused')
      throw new InvalidCredentialsError()
    }
    if (needsRehash) {
      await fastify.usersRepository.updatePasswordHash(user.id, await fastify.passwordHasher.hash(password))
      request.log.info({ event: 'password_rehash', userId: user.id }, 'password hash upgraded to the configured cost')
    }
    const { token, expiresIn } = fastify.issueAccessToken(user)
    request.log.info({ event: 'login', outcome: 'success', userId: user.id }, 'user logged in')
    return { token, tokenType: 'Bearer' as const, expiresIn }
  })
}

export default authRoutes
