import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance } from 'fastify'
import { ErrorCodes } from '../errors.js'
import type { ErrorBody } from '../schemas/common.js'

function errorBody (statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

export interface ErrorHandlerOptions {
  /** The realm of the `WWW-Authenticate` challenge on 401s (the token issuer). */
  realm: string
}

/** RFC 6750 3.1: a token that was presented but is expired, revoked or invalid. */
const INVALID_TOKEN_CODES = new Set(['TOKEN_INVALID', 'TOKEN_EXPIRED', 'SESSION_REVOKED'])

/**
 * The challenge every 401 carries (RFC 9110 11.6.1): with `error="invalid_token"`
 * when an access token was presented and refused (RFC 6750 3), with
 * `error="insufficient_scope"` when it lacks the route's scope, plain when
 * none was, or when what failed was a password or a refresh token.
 */
export function challengeFor (realm: string, code: string | undefined): string {
  const challenge = `Bearer realm="${realm}"`
  if (code === 'INSUFFICIENT_SCOPE') return `${challenge}, error="insufficient_scope"`
  return code !== undefined && INVALID_TOKEN_CODES.has(code) ? `${challenge}, error="invalid_token"` : challenge
}

/**
 * One shape for every error: Fastify's `{ statusCode, code, error, message }`.
 * Client errors (ours, validation, body parsing) pass through as they are;
 * anything else is logged in full and answered with a 500 that says nothing
 * about the internals.
 */
async function errorHandlerPlugin (fastify: FastifyInstance, options: ErrorHandlerOptions) {
  fastify.setErrorHandler(function handleError (error: FastifyError, request, reply) {
    const statusCode = error.statusCode ?? 500
    if (statusCode === 401) reply.header('www-authenticate', challengeFor(options.realm, error.code))
    if (statusCode >= 400 && statusCode < 500) {
      request.log.info({ code: error.code, statusCode }, error.message)
      return reply.code(statusCode).send(errorBody(statusCode, error.code ?? STATUS_CODES[statusCode] ?? 'CLIENT_ERROR', error.message))
    }
    if (statusCode === 503 && error.code !== undefined) {
      request.log.warn({ code: error.code }, error.message)
      return reply.code(503).send(errorBody(503, error.code, error.message))
    }
    request.log.error({ err: error }, 'unhandled error')
    return reply.code(500).send(errorBody(500, ErrorCodes.internal, 'Internal Server Error'))
  })

  fastify.setNotFoundHandler(function handleNotFound (request, reply) {
    // The path only: the query string may carry a `secret_token`.
    const path = request.url.split('?', 1)[0]
    return reply.code(404).send(errorBody(404, ErrorCodes.notFound, `Route ${request.method}:${path} not found`))
  })
}

export default fp(errorHandlerPlugin, { name: 'error-handler', fastify: '5.x' })
