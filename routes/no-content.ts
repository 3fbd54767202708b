import type { FastifyReply } from 'fastify'

/**
 * A 204, with no body at all. `send(null)` would be serialised by the
 * route's 204 schema into the text "null", which Fastify then strips with
 * the content type, deleting from the reply's headers on every response.
 */
export function sendNoContent (reply: FastifyReply): FastifyReply {
  return reply.code(204).send()
}
