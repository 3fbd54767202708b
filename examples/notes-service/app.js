import Fastify from 'fastify'
import authVerify from '@auth-service/verify/fastify'
import { createClientCredentials, isClientToken } from '@auth-service/verify'

/**
 * A notes service that trusts auth-service tokens: one line to register the
 * verifier, one hook to protect the routes. Notes live in memory, per user.
 * Other services call its internal route with a client-credentials token
 * (audience `serviceAudience`) that carries the scope `notes:read`.
 * It follows the auth service's revocations (pushed, within a second) as the
 * service client `clientId`, which holds the scope `revocations:read`.
 * @param {{ authUrl: string | URL, issuer: string, audience: string, clientId: string, clientSecret: string, serviceAudience?: string, revocationsPollIntervalMs?: number, logger?: boolean | object }} options
 */
export async function buildNotesApp (options) {
  const app = Fastify({ logger: options.logger ?? false })

  await app.register(authVerify, {
    issuer: options.issuer,
    // Users' tokens carry the auth service's audience; service clients' tokens, this service's.
    audience: [options.audience, options.serviceAudience ?? 'notes-service'],
    acceptClientTokens: true,
    jwksUrl: new URL('/.well-known/jwks.json', options.authUrl),
    revocationsUrl: new URL('/revocations', options.authUrl),
    revocationsCredentials: createClientCredentials({ tokenUrl: new URL('/oauth/token', options.authUrl), clientId: options.clientId, clientSecret: options.clientSecret }),
    revocationsPollIntervalMs: options.revocationsPollIntervalMs ?? 5000
  })

  /** @type {Map<string, Array<{ text: string, createdAt: string }>>} */
  const notesByUser = new Map()

  app.get('/health', async () => ({ status: 'ok' }))

  // For other services: a client-credentials token with the scope notes:read.
  app.get('/internal/stats', { preHandler: [app.authenticate, app.requireScopes('notes:read')] }, async () => {
    const all = [...notesByUser.values()]
    return { users: all.length, notes: all.reduce((sum, notes) => sum + notes.length, 0) }
  })

  app.register(async function notesRoutes (notes) {
    notes.addHook('preHandler', notes.authenticate)
    // Notes belong to people: a service client's token has no notes here.
    notes.addHook('preHandler', async (request, reply) => {
      if (request.auth !== null && isClientToken(request.auth)) {
        return reply.code(403).send({ statusCode: 403, code: 'FORBIDDEN', error: 'Forbidden', message: 'Notes are for users' })
      }
    })

    notes.get('/notes', async (request) => ({ owner: request.auth?.sub, notes: notesByUser.get(request.auth?.sub ?? '') ?? [] }))

    notes.post('/notes', {
      schema: {
        body: {
          type: 'object',
          required: ['text'],
          additionalProperties: false,
          properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } }
        }
      }
    }, async (request, reply) => {
      const owner = request.auth?.sub ?? ''
      const note = { text: /** @type {{ text: string }} */ (request.body).text, createdAt: new Date().toISOString() }
      notesByUser.set(owner, [...(notesByUser.get(owner) ?? []), note])
      return reply.code(201).send(note)
    })
  })

  return app
}
