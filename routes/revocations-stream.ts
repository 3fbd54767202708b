import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Writable } from 'node:stream'
import { Counter, Gauge } from 'prom-client'
import { InvalidCursorError, StreamsFullError, TooManyStreamsError } from '../errors.js'
import type { RevocationRecord } from '../plugins/sessions/revocation-feed.js'
import { ClientScopeUnauthorizedResponse, InternalErrorResponse, errorResponse } from '../schemas/common.js'
import { RevocationsQuerySchema } from '../schemas/revocations.js'
import { decodeCursor, encodeCursor, toFeedEntry } from './revocation-entries.js'

export interface RevocationStreamOptions {
  /** Streams open at once on this replica, all clients together. */
  maxStreams: number
  /** Streams open at once on this replica for one client. */
  maxStreamsPerClient: number
  /** How often an idle stream gets a heartbeat comment. */
  heartbeatMs: number
}

/**
 * Writes a stream's chunks, unless the reader has let this many bytes pile up
 * past what the socket took: then it is dropped (`onTooSlow`), not buffered
 * for without limit, and resumes from its cursor when it reconnects.
 */
export const MAX_BUFFERED_BYTES = 1024 * 1024

export function createChunkWriter (destination: Writable, onTooSlow: () => void, maxBufferedBytes = MAX_BUFFERED_BYTES) {
  return function writeChunk (chunk: string): boolean {
    if (destination.writableLength > maxBufferedBytes) {
      onTooSlow()
      return false
    }
    destination.write(chunk)
    return true
  }
}

/**
 * GET /revocations/stream: the revocation feed pushed as Server-Sent Events.
 * Each replica's revocation state tails the feed in the database (FerretDB
 * has no change streams), so a stream on any replica carries revocations
 * made on every one. A stream first replays, from that state, the entries
 * after its cursor, then pushes what the state's next reads find; no stream
 * costs a database read.
 */
const revocationsStreamRoutes: FastifyPluginAsyncTypebox<RevocationStreamOptions> = async function revocationsStreamRoutes (fastify, options) {
  const open = new Set<() => void>()
  const openPerClient = new Map<string, number>()
  const registers = [fastify.metricsRegistry]
  // eslint-disable-next-line no-new
  new Gauge({ name: 'revocation_streams_open', help: 'Revocation streams this replica serves now.', registers, collect () { this.set(open.size) } })
  const dropped = new Counter({ name: 'revocation_streams_dropped_total', help: 'Revocation streams ended because their reader did not keep up.', registers })

  fastify.get('/revocations/stream', {
    onRequest: fastify.requireClientScope('revocations:read'),
    sse: { kind: 'manual', heartbeat: false },
    schema: {
      tags: ['keys'],
      summary: 'Revocations pushed as they happen (Server-Sent Events), for services that refuse revoked tokens within a second',
      description: 'Replays the feed after `since` (or `Last-Event-ID`; without either, every still-relevant revocation), then pushes each new one as event `revoked` whose `data` is a feed entry and whose `id` is the cursor after it; an `id`-only message marks the end of the replay. A heartbeat comment every 15 s while this replica reads the feed: hearing nothing for longer means the stream cannot vouch for anything. A slow reader is disconnected and resumes from its cursor. The stream ends when the token expires or the client is deleted.',
      security: [{ clientCredentials: ['revocations:read'] }],
      querystring: RevocationsQuerySchema,
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 64, description: 'The `id` of the last event received (what EventSource sends on reconnecting).' })) }),
      produces: ['text/event-stream'],
      response: {
        200: Type.String({ description: 'text/event-stream: `event: revoked`, `id: <cursor>`, `data: {sid?, sub?, notBefore?, revokedAt, expiresAt}`.' }),
        400: errorResponse('Malformed query, or a cursor this service did not issue or that is ahead of the feed (start over without it).', ['FST_ERR_VALIDATION', 'INVALID_CURSOR']),
        401: ClientScopeUnauthorizedResponse,
        429: errorResponse('Too many requests from this address, or this client already has REVOCATION_STREAMS_PER_CLIENT streams open here.', ['RATE_LIMITED', 'TOO_MANY_STREAMS']),
        500: InternalErrorResponse,
        503: errorResponse('This replica has not read the revocation state (or the list of clients) yet or for too long, the database is unreachable, or the replica serves as many streams as it can; retry shortly.', ['DATABASE_UNAVAILABLE', 'REVOCATION_STATE_UNAVAILABLE', 'REVOCATION_STATE_STALE', 'STREAMS_FULL'])
      }
    }
  }, async function revocationStream (request, reply) {
    const client = request.serviceClient!
    const since = request.query.since ?? request.headers['last-event-id']
    let sentSeq = since === undefined ? 0 : decodeCursor(since)
    let replay = fastify.revocationState.revocationsAfter(sentSeq)
    // A cursor another replica handed out may be a moment ahead of this one's state: read, then judge.
    if (sentSeq > replay.latestSeq) {
      await fastify.revocationState.sync()
      replay = fastify.revocationState.revocationsAfter(sentSeq)
    }
    // A cursor the feed has not reached (a restored database): the reader must start over.
    if (sentSeq > replay.latestSeq) throw new InvalidCursorError()

    if (open.size >= options.maxStreams) throw new StreamsFullError()
    const clientStreams = openPerClient.get(client.client_id) ?? 0
    if (clientStreams >= options.maxStreamsPerClient) throw new TooManyStreamsError()
    openPerClient.set(client.client_id, clientStreams + 1)
    open.add(end)
    let ended = false

    const writeChunk = createChunkWriter(reply.raw, () => {
      request.log.info({ clientId: client.client_id }, 'revocation stream dropped: the reader is too slow')
      dropped.inc()
      end()
    })
    function write (chunk: string) {
      if (ended) return
      reply.sse.sendHeaders()
      writeChunk(chunk)
    }

    function push (revocations: RevocationRecord[]) {
      let chunk = ''
      for (const revocation of revocations) {
        if (revocation.seq <= sentSeq) continue
        sentSeq = revocation.seq
        chunk += `event: revoked\nid: ${encodeCursor(revocation.seq)}\ndata: ${JSON.stringify(toFeedEntry(revocation))}\n\n`
      }
      if (chunk !== '') write(chunk)
    }

    // The replay comes from this replica's state, and what its next reads find
    // comes to the listener: both taken in this one synchronous step, with no
    // read in between, so nothing falls between them.
    const unsubscribe = fastify.revocationState.subscribe(({ revocations, reset }) => {
      // Cursors handed out before a restore mean nothing now: the reader starts over.
      if (reset) return end()
      if (!fastify.revocationState.clientExists(client.client_id)) return end()
      push(revocations)
    })
    const heartbeat = setInterval(() => {
      // Only while this replica reads the feed: a heartbeat vouches that nothing was missed.
      if (Date.now() - fastify.revocationState.lastSyncAt() < options.heartbeatMs) write(': heartbeat\n\n')
    }, options.heartbeatMs)
    heartbeat.unref()
    // The token was checked once, at the start: the stream lasts no longer than it.
    const expiry = setTimeout(end, Math.max(0, client.exp * 1000 - Date.now()))
    expiry.unref()
    reply.sse.onClose(end)
    push(replay.revocations)
    sentSeq = Math.max(sentSeq, replay.latestSeq)
    // The end of the replay: its cursor, so a reader that reconnects now does not replay again.
    write(`id: ${encodeCursor(sentSeq)}\n\n`)
    reply.sse.keepAlive()

    function end () {
      if (ended) return
      ended = true
      unsubscribe()
      clearInterval(heartbeat)
      clearTimeout(expiry)
      open.delete(end)
      const left = (openPerClient.get(client.client_id) ?? 1) - 1
      if (left === 0) openPerClient.delete(client.client_id)
      else openPerClient.set(client.client_id, left)
      reply.sse.close()
      // A stream's connection is not kept for another request: closed once
      // the end is written, so a server closing does not wait on it.
      request.raw.socket?.destroySoon()
    }
  })

  // Streams never end on their own: close them, so the server's close does not wait for them.
  fastify.addHook('preClose', async () => {
    for (const end of [...open]) end()
  })
}

export default fp(revocationsStreamRoutes, { name: 'revocations-stream-routes', encapsulate: true, dependencies: ['revocation-state', 'client-scopes', '@fastify/sse', 'metrics'] })
