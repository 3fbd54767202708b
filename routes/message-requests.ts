import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TooManyMessagesError } from '../errors.js'

/**
 * The per-address limit on messages (reset, verification), checked before
 * anything else: past it, 429 with Retry-After, recorded as an auth event of
 * `event`, the same for a known address as for an unknown one.
 */
export async function limitMessageRequests (
  fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply, email: string, event: 'password_reset_request' | 'email_verification_request'
): Promise<void> {
  const retryAfter = await fastify.messageRequests.count(email)
  if (retryAfter === 0) return
  fastify.recordAuthEvent(request, { event, outcome: 'rate_limited' })
  reply.header('retry-after', String(retryAfter))
  throw new TooManyMessagesError()
}
