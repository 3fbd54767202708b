import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { ClientNotFoundError, ForbiddenError, SessionRevokedError, UserNotFoundError } from '../errors.js'
import { createdAtOf, type UserRecord } from '../plugins/users-repository.js'
import { OBJECT_ID, BadRequestResponse, BodyRouteResponses, InternalErrorResponse, LiveSessionUnauthorizedResponse, ServiceUnavailableResponse, errorResponse } from '../schemas/common.js'
import {
  AdminUserSchema, ClientListSchema, ClientParamsSchema, ClientSecretSchema, CreatedClientSchema, NewClientSchema,
  UserListQuerySchema, UserListResponseSchema, UserParamsSchema, UserPatchSchema, type AdminUser
} from '../schemas/admin.js'
import type { ClientRecord } from '../plugins/clients-repository.js'
import { sendNoContent } from './no-content.js'

const security = [{ bearerAuth: [] }]

const AdminForbiddenResponse = errorResponse('The token\'s user does not hold the role `admin`.', ['FORBIDDEN'])
const NotFoundResponse = errorResponse('No user with this id.', ['USER_NOT_FOUND'])
const Errors = { 401: LiveSessionUnauthorizedResponse, 403: AdminForbiddenResponse, 500: InternalErrorResponse, 503: ServiceUnavailableResponse }

/**
 * User administration. Each route: the access token from the header only,
 * the role `admin` in the token, then, with one read each, a live session
 * and a user who still holds the role now (a demoted admin's token is
 * refused at once, not when it expires). Every change is an auth event
 * naming the acting admin.
 */
const ClientNotFoundResponse = errorResponse('No client with this id.', ['CLIENT_NOT_FOUND'])

function clientView (client: ClientRecord) {
  return { clientId: client.id, name: client.name, scopes: client.scopes, audience: client.audience, createdAt: client.createdAt.toISOString() }
}

const adminRoutes: FastifyPluginAsyncTypebox<{ clientSecretOverlapSeconds: number }> = async function adminRoutes (fastify, { clientSecretOverlapSeconds }) {
  fastify.addSchema(AdminUserSchema)
  fastify.addHook('onRequest', async function headerTokenOnly (request) {
    // A token in a URL must never authorise anything here.
    delete (request.query as Record<string, unknown> | undefined)?.secret_token
  })
  fastify.addHook('preHandler', fastify.authenticate)
  fastify.addHook('preHandler', fastify.requireRole('admin'))
  fastify.addHook('preHandler', async function requireLiveAdmin (request: FastifyRequest) {
    const [session, admin] = await Promise.all([
      fastify.sessionsRepository.findLive(request.user.sub, request.user.sid),
      fastify.usersRepository.findById(request.user.sub)
    ])
    if (session === null || admin === null) throw new SessionRevokedError()
    if (admin.disabled || !fastify.rolesOf(admin).includes('admin')) throw new ForbiddenError()
  })

  const view = (user: UserRecord): AdminUser => ({
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    roles: fastify.rolesOf(user),
    disabled: user.disabled,
    createdAt: createdAtOf(user.id).toISOString()
  })

  async function userOf (id: string): Promise<UserRecord> {
    const user = OBJECT_ID.test(id) ? await fastify.usersRepository.findById(id) : null
    if (user === null) throw new UserNotFoundError()
    return user
  }

  fastify.get('/users', {
    schema: {
      tags: ['admin'],
      summary: 'List and search users, a page at a time',
      security,
      querystring: UserListQuerySchema,
      response: { 200: UserListResponseSchema, 400: BadRequestResponse, ...Errors }
    }
  }, async function listUsers (request) {
    const { email, cursor, limit } = request.query
    const page = await fastify.usersRepository.list({ emailPrefix: email?.trim().toLowerCase(), after: cursor, limit })
    const users = page.slice(0, limit)
    return { users: users.map(view), cursor: page.length > limit ? users.at(-1)!.id : null }
  })

  fastify.get('/users/:id', {
    schema: {
      tags: ['admin'],
      summary: 'One user',
      security,
      params: UserParamsSchema,
      response: { 200: Type.Ref(AdminUserSchema), 404: NotFoundResponse, ...Errors }
    }
  }, async function getUser (request) {
    return view(await userOf(request.params.id))
  })

  fastify.patch('/users/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Set a user\'s roles, or disable or enable the account (disabling revokes every session)',
      security,
      params: UserParamsSchema,
      body: UserPatchSchema,
      response: { 200: Type.Ref(AdminUserSchema), 400: BadRequestResponse, 404: NotFoundResponse, ...Errors, ...BodyRouteResponses }
    }
  }, async function updateUser (request) {
    const target = await userOf(request.params.id)
    const updated = await fastify.usersRepository.update(target.id, request.body)
    if (updated === null) throw new UserNotFoundError()
    const actorId = request.user.sub
    if (request.body.roles !== undefined) fastify.recordAuthEvent(request, { event: 'admin', outcome: 'user_updated', actorId, userId: target.id, roles: request.body.roles })
    if (request.body.disabled === true) {
      const revoked = await fastify.sessionsRepository.revokeUser(target.id, 'account_disabled')
      fastify.recordAuthEvent(request, { event: 'admin', outcome: 'user_disabled', actorId, userId: target.id, revokedSessions: revoked })
    } else if (request.body.disabled === false) {
      fastify.recordAuthEvent(request, { event: 'admin', outcome: 'user_enabled', actorId, userId: target.id })
    }
    return view(updated)
  })

  fastify.delete('/users/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Delete a user: sessions revoked, the account and its personal data gone (the address can sign up again)',
      security,
      params: UserParamsSchema,
      response: { 204: Type.Null({ description: 'Deleted.' }), 404: NotFoundResponse, ...Errors }
    }
  }, async function deleteUser (request, reply) {
    const target = await userOf(request.params.id)
    const revoked = await fastify.removeAccount(target)
    fastify.recordAuthEvent(request, { event: 'admin', outcome: 'user_deleted', actorId: request.user.sub, userId: target.id, revokedSessions: revoked })
    return sendNoContent(reply)
  })

  fastify.delete('/users/:id/sessions', {
    schema: {
      tags: ['admin'],
      summary: 'Revoke every session of a user',
      security,
      params: UserParamsSchema,
      response: { 204: Type.Null({ description: 'Every session is over.' }), 404: NotFoundResponse, ...Errors }
    }
  }, async function revokeUserSessions (request, reply) {
    const target = await userOf(request.params.id)
    const revoked = await fastify.sessionsRepository.revokeAllOfUser(target.id, 'sessions_revoked_by_admin')
    fastify.recordAuthEvent(request, { event: 'admin', outcome: 'sessions_revoked', actorId: request.user.sub, userId: target.id, revokedSessions: revoked })
    return sendNoContent(reply)
  })

  fastify.post('/clients', {
    schema: {
      tags: ['admin'],
      summary: 'Create a service client; its secret is in this answer only',
      security,
      body: NewClientSchema,
      response: { 201: CreatedClientSchema, 400: BadRequestResponse, ...Errors, ...BodyRouteResponses }
    }
  }, async function createClient (request, reply) {
    const { client, secret } = await fastify.clientsRepository.create(request.body)
    fastify.recordAuthEvent(request, { event: 'admin', outcome: 'client_created', actorId: request.user.sub, clientId: client.id, scopes: client.scopes })
    return reply.code(201).send({ ...clientView(client), clientSecret: secret })
  })

  fastify.get('/clients', {
    schema: {
      tags: ['admin'],
      summary: 'Every service client (never a secret)',
      security,
      response: { 200: ClientListSchema, ...Errors }
    }
  }, async function listClients () {
    return { clients: (await fastify.clientsRepository.list()).map(clientView) }
  })

  fastify.post('/clients/:id/secret', {
    schema: {
      tags: ['admin'],
      summary: 'A new secret for a client; the previous one keeps working for CLIENT_SECRET_OVERLAP_SECONDS',
      security,
      params: ClientParamsSchema,
      response: { 200: ClientSecretSchema, 404: ClientNotFoundResponse, ...Errors }
    }
  }, async function rotateClientSecret (request) {
    const secret = await fastify.clientsRepository.rotateSecret(request.params.id, clientSecretOverlapSeconds)
    if (secret === null) throw new ClientNotFoundError()
    fastify.recordAuthEvent(request, { event: 'admin', outcome: 'client_secret_rotated', actorId: request.user.sub, clientId: request.params.id })
    return { clientId: request.params.id, clientSecret: secret }
  })

  fastify.delete('/clients/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Delete a client: no new token for it, and its tokens are inactive at introspection',
      security,
      params: ClientParamsSchema,
      response: { 204: Type.Null({ description: 'Deleted.' }), 404: ClientNotFoundResponse, ...Errors }
    }
  }, async function deleteClient (request, reply) {
    if (!await fastify.clientsRepository.delete(request.params.id)) throw new ClientNotFoundError()
    fastify.recordAuthEvent(request, { event: 'admin', outcome: 'client_deleted', actorId: request.user.sub, clientId: request.params.id })
    return sendNoContent(reply)
  })
}

export default fp(adminRoutes, { name: 'admin-routes', encapsulate: true, dependencies: ['jwt', 'roles', 'users-repository', 'sessions-repository', 'clients-repository', 'account-removal', 'metrics'] })
