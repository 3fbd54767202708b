import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createdAtOf } from '../plugins/users-repository.js'
import { BadRequestResponse, InternalErrorResponse, UnauthorizedResponse } from '../schemas/common.js'
import { AccessTokenQuerySchema, ProfileResponseSchema } from '../schemas/user.js'

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { queryToken: [] }]

/** Routes that need an access token. Not wrapped in fastify-plugin, so the hook stays here. */
const userRoutes: FastifyPluginAsyncTypebox = async function userRoutes (fastify) {
  fastify.addHook('preHandler', fastify.authenticate)

  fastify.get('/profile', {
    schema: {
      tags: ['user'],
      summary: 'The signed-in user, read from the access token (no database call)',
      security,
      querystring: AccessTokenQuerySchema,
      response: {
        200: ProfileResponseSchema,
        400: BadRequestResponse,
        401: UnauthorizedResponse,
        500: InternalErrorResponse
      }
    }
  }, async function profile (request) {
    const { sub, email } = request.user
    return {
      message: 'You made it to the secure route' as const,
      user: { id: sub, email, createdAt: createdAtOf(sub).toISOString() }
    }
  })
}

export default userRoutes
