import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { InvalidCursorError } from '../errors.js'
import { InternalErrorResponse, ServiceUnavailableResponse, errorResponse } from '../schemas/common.js'
import { RevocationsQuerySchema, RevocationsResponseSchema } from '../schemas/revocations.js'

const PAGE_SIZE = 1000
const CURSOR_PREFIX = 'r1.'

function encodeCursor (seq: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`).toString('base64url')
}

const CURSOR = /^r1\.(0|[1-9]\d*)$/

/** The seq of a cursor this service issued, exactly as it was issued; anything else is refused. */
function decodeCursor (cursor: string): number {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString())
  const seq = match === null ? Number.NaN : Number(match[1])
  if (!Number.isSafeInteger(seq) || encodeCursor(seq) !== cursor) throw new InvalidCursorError()
  return seq
}

const revocationsRoutes: FastifyPluginAsyncTypebox = async function revocationsRoutes (fastify) {
  fastify.get('/revocations', {
    schema: {
      tags: ['keys'],
      summary: 'Sessions revoked since a cursor, for services that refuse revoked sessions\' tokens before they expire',
      description: 'Poll it (every few seconds) with the previous `cursor`. Each revoked session appears once, until the last access token it issued has expired. Without `since`: every still-relevant revocation.',
      querystring: RevocationsQuerySchema,
      response: {
        200: RevocationsResponseSchema,
        400: errorResponse('Malformed query, or a cursor this service did not issue or that is ahead of the feed (start over without `since`).', ['FST_ERR_VALIDATION', 'INVALID_CURSOR']),
        500: InternalErrorResponse,
        503: ServiceUnavailableResponse
      }
    }
  }, async function revocations (request, reply) {
    const since = request.query.since === undefined ? 0 : decodeCursor(request.query.since)
    const { revocations, latestSeq } = await fastify.sessionsRepository.listRevocations(since, PAGE_SIZE)
    // A cursor the feed has not reached (a database restored from a backup)
    // would silently receive nothing forever: the consumer must start over.
    if (since > latestSeq) throw new InvalidCursorError()
    // After the last entry returned; with none, where the caller stood, or (first poll) the feed's end.
    const last = revocations.at(-1)?.seq ?? (request.query.since === undefined ? latestSeq : since)
    // A feed must never be served stale by a cache in between.
    reply.header('cache-control', 'no-cache')
    return {
      revoked: revocations.map((revocation) => ({
        sid: revocation.sessionId,
        revokedAt: revocation.revokedAt.toISOString(),
        expiresAt: revocation.expiresAt.toISOString()
      })),
      cursor: encodeCursor(last)
    }
  })
}

export default revocationsRoutes
