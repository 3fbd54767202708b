import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { DeclaredClient } from '../config.js'

const RETRY_MS = 5000

/**
 * The service clients of SERVICE_CLIENTS, written at start-up (created, or
 * reset to their declaration), so a deployment gives a service its
 * credentials without an admin. Without a database at start, retried until
 * it answers; the service starts either way.
 */
async function declaredClientsPlugin (fastify: FastifyInstance, options: { clients: DeclaredClient[] }) {
  if (options.clients.length === 0) return
  let retry: NodeJS.Timeout | undefined
  let closed = false

  async function declare () {
    if (closed) return
    try {
      for (const client of options.clients) await fastify.clientsRepository.ensureDeclared(client)
      fastify.log.info({ clients: options.clients.map((client) => client.id) }, 'declared service clients are in place')
      // The replica's client list knows them at once, for the feed's and the stream's check.
      await fastify.revocationState.sync().catch(() => undefined)
    } catch (error) {
      fastify.log.warn({ err: error }, 'declared service clients cannot be written yet; retrying')
      retry = setTimeout(() => { declare().catch(() => undefined) }, RETRY_MS)
      retry.unref()
    }
  }

  fastify.addHook('onReady', declare)
  fastify.addHook('onClose', async () => {
    closed = true
    clearTimeout(retry)
  })
}

export default fp(declaredClientsPlugin, { name: 'declared-clients', fastify: '5.x', dependencies: ['clients-repository', 'revocation-state'] })
