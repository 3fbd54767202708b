import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { InvalidCursorError } from '../errors.js'
import { decodeCursor, encodeCursor, toFeedEntry, type FeedEntry } from './revocation-entries.js'
import type { FastifyRequest } from 'fastify'
import { ClientScopeUnauthorizedResponse, InternalErrorResponse, TooManyRequestsResponse, errorResponse } from '../schemas/common.js'
import { RevocationsQuerySchema, RevocationsResponseSchema } from '../schemas/revocations.js'

const PAGE_SIZE = 1000

/** How long one read of the whole feed (no cursor) serves every caller: a flood of such reads costs one read a second. */
const FULL_READ_TTL_MS = 1000

type FeedPage = { revoked: FeedEntry[], cursor: string, hasMore: boolean }

const revocationsRoutes: FastifyPluginAsyncTypebox = async function revocationsRoutes (fastify) {
  async function page (since: number, fromStart: boolean): Promise<FeedPage> {
    const { revocations, latestSeq } = await fastify.sessionsRepository.listRevocations(since, PAGE_SIZE)
    // A cursor the feed has not reached (a database restored from a backup)
    // would silently receive nothing forever: the consumer must start over.
    if (since > latestSeq) throw new InvalidCursorError()
    // After the last entry returned; with none, where the caller stood, or (first poll) the feed's end.
    const last = revocations.at(-1)?.seq ?? (fromStart ? latestSeq : since)
    return {
      revoked: revocations.map(toFeedEntry),
      cursor: encodeCursor(last),
      // A full page: more may follow at once, so the caller reads on without waiting.
      hasMore: revocations.length === PAGE_SIZE
    }
  }

  // The page and its cursor are one snapshot, so a caller served from here
  // and then polling with its cursor still misses nothing.
  let fullRead: { readAt: number, page: Promise<FeedPage> } | undefined
  function wholeFeed (): Promise<FeedPage> {
    if (fullRead === undefined || Date.now() - fullRead.readAt >= FULL_READ_TTL_MS) {
      const read = { readAt: Date.now(), page: page(0, true) }
      read.page.catch(() => { if (fullRead === read) fullRead = undefined })
      fullRead = read
    }
    return fullRead.page
  }

  fastify.get('/revocations', {
    onRequest: fastify.requireClientScope('revocations:read'),
    config: {
      // Reads without a cursor are the expensive ones: limited per address (RATE_LIMIT_IP_MAX per window).
      rateLimit: { allowList: (request: FastifyRequest) => (request.query as { since?: unknown }).since !== undefined }
    },
    schema: {
      tags: ['keys'],
      summary: 'Sessions revoked since a cursor, for services that refuse revoked sessions\' tokens before they expire',
      description: 'Poll it (every few seconds) with the previous `cursor`. Each revoked session appears once, until the last access token it issued has expired. Without `since`: every still-relevant revocation; such reads are rate-limited per address and may be up to a second old (their cursor still misses nothing).',
      security: [{ clientCredentials: ['revocations:read'] }],
      querystring: RevocationsQuerySchema,
      response: {
        200: RevocationsResponseSchema,
        400: errorResponse('Malformed query, or a cursor this service did not issue or that is ahead of the feed (start over without `since`).', ['FST_ERR_VALIDATION', 'INVALID_CURSOR']),
        401: ClientScopeUnauthorizedResponse,
        429: TooManyRequestsResponse,
        500: InternalErrorResponse,
        503: errorResponse('The database is unreachable, the service is overloaded, or this replica has not read the list of clients yet or for too long; retry later.', ['DATABASE_UNAVAILABLE', 'FST_UNDER_PRESSURE', 'REVOCATION_STATE_UNAVAILABLE', 'REVOCATION_STATE_STALE'])
      }
    }
  }, async function revocations (request, reply) {
    const { since } = request.query
    const feed = since === undefined ? await wholeFeed() : await page(decodeCursor(since), false)
    // A feed must never be served stale by a cache in between.
    reply.header('cache-control', 'no-cache')
    return feed
  })
}

export default fp(revocationsRoutes, { name: 'revocations-routes', encapsulate: true, dependencies: ['sessions-repository', 'rate-limit', 'client-scopes'] })
