import Fastify from 'fastify'
import authVerify from '@auth-service/verify/fastify'

/**
 * A notes service that trusts auth-service tokens: one line to register the
 * verifier, one hook to protect the routes. Notes live in memory, per user.
 * @param {{ authUrl: string | URL, issuer: string, audience: string, revocationsPollIntervalMs?: number, logger?: boolean | object }} options
 */
export async function buildNotesApp (options) {
  const app = Fastify({ logger: options.logger ?? false })

  await app.register(authVerify, {
    issuer: options.issuer,
    audience: options.audience,
    jwksUrl: new URL('/.well-known/jwks.json', options.authUrl),
    revocationsUrl: new URL('/revocations', options.authUrl),
    revocationsPollIntervalMs: options.revocationsPollIntervalMs ?? 5000
  })

  /** @type {Map<string, Array<{ text: string, createdAt: string }>>} */
  const notesByUser = new Map()

  app.get('/health', async () => ({ status: 'ok' }))

  app.register(async function notesRoutes (notes) {
    notes.addHook('preHandler', notes.authenticate)

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
