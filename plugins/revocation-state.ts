import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { RevocationStateStaleError, RevocationStateUnavailableError } from '../errors.js'
import type { RevocationRecord } from './sessions/revocation-feed.js'

/** What a reader of the state hears after each read of the feed. */
export type RevocationStateListener = (news: {
  /** The entries read, in feed order (none on most reads). */
  revocations: RevocationRecord[]
  /** The feed went behind what was read (a restored database): every cursor handed out is void. */
  reset: boolean
}) => void

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * What this replica knows, in memory, of revoked sessions and of the
     * service clients that exist: the forward-auth check answers from it
     * without a database read, and the revocation stream pushes what it
     * reads. Kept current by reading the revocation feed and the client list
     * every REVOCATION_SYNC_INTERVAL_MS (a tailing read: FerretDB has no
     * change streams), so a revocation made on any replica reaches every one
     * within that time.
     */
    revocationState: {
      /** Whether a user's token is revoked: its session, or its user from before the token was issued. */
      isRevoked: (claims: { sid: string, sub: string, iat: number }) => boolean
      /** Whether this replica's list, as of its last read, holds the client. */
      clientExists: (clientId: string) => boolean
      /**
       * Whether the client exists: from the list, or, for a client the list
       * lacks (one created since the last read, on any replica), from the
       * database. A client found there joins the list; one not found is
       * remembered as absent until the next read, so a deleted client's tokens
       * cost one database read per read interval, not one per request.
       */
      confirmClient: (clientId: string) => Promise<boolean>
      /**
       * Throws unless the state can vouch for a token: 503
       * REVOCATION_STATE_UNAVAILABLE before the first read, 503
       * REVOCATION_STATE_STALE when no read has succeeded for longer than
       * REVOCATION_STALENESS_BOUND_SECONDS (it may miss a revocation: fail
       * closed, as the verification library does). It recovers by itself.
       */
      assertCurrent: () => void
      /** When the last read succeeded (ms since the epoch; 0 before the first). */
      lastSyncAt: () => number
      /**
       * The still-relevant entries after `seq`, in feed order, as of the last
       * read, and the seq that read reached: a stream replays from here, not
       * from the database. Entries past `latestSeq` reach `subscribe`'s listeners.
       */
      revocationsAfter: (seq: number) => { revocations: RevocationRecord[], latestSeq: number }
      /** Calls `listener` after every successful read, until the returned function is called. */
      subscribe: (listener: RevocationStateListener) => () => void
      /**
       * A read that starts after this call (one already under way may have
       * passed what the caller just wrote): the current read's follow-up,
       * shared by every caller that asks meanwhile.
       */
      sync: () => Promise<void>
    }
  }
}

const PAGE_SIZE = 1000

async function revocationStatePlugin (fastify: FastifyInstance, options: { syncIntervalMs: number, stalenessBoundMs: number }) {
  const revoked = new Map<string, number>()
  /** User-wide entries: the user id → the latest notBefore (ms) and until when it matters. */
  const usersNotBefore = new Map<string, { notBefore: number, expiresAt: number }>()
  let clients = new Set<string>()
  /** Clients the database did not hold when asked since the last read. */
  let absentClients = new Set<string>()
  /** Every still-relevant entry read, in feed order. */
  let log: RevocationRecord[] = []
  const listeners = new Set<RevocationStateListener>()
  let afterSeq = 0
  let lastSyncAt = 0
  let running: Promise<void> | undefined
  let next: Promise<void> | undefined

  function remember (revocation: RevocationRecord) {
    if (revocation.sessionId !== undefined) {
      revoked.set(revocation.sessionId, revocation.expiresAt.getTime())
      return
    }
    const known = usersNotBefore.get(revocation.userId!)
    if (known === undefined || known.notBefore < revocation.notBefore!.getTime()) {
      usersNotBefore.set(revocation.userId!, { notBefore: revocation.notBefore!.getTime(), expiresAt: revocation.expiresAt.getTime() })
    }
  }

  async function read () {
    const news: RevocationRecord[] = []
    let reset = false
    for (;;) {
      const { revocations, latestSeq } = await fastify.sessionsRepository.listRevocations(afterSeq, PAGE_SIZE)
      // The feed is behind what was read (a database restored from a backup): read it whole again.
      if (latestSeq < afterSeq) {
        afterSeq = 0
        reset = true
        news.length = 0
        log = []
        continue
      }
      for (const revocation of revocations) remember(revocation)
      news.push(...revocations)
      log.push(...revocations)
      afterSeq = revocations.at(-1)?.seq ?? afterSeq
      if (revocations.length < PAGE_SIZE) break
    }
    clients = new Set((await fastify.clientsRepository.list()).map((client) => client.id))
    absentClients = new Set()
    const now = Date.now()
    for (const [sessionId, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sessionId)
    for (const [userId, entry] of usersNotBefore) if (entry.expiresAt <= now) usersNotBefore.delete(userId)
    if (log.some((revocation) => revocation.expiresAt.getTime() <= now)) log = log.filter((revocation) => revocation.expiresAt.getTime() > now)
    lastSyncAt = now
    for (const listener of listeners) {
      try {
        listener({ revocations: news, reset })
      } catch (error) {
        fastify.log.error({ err: error }, 'a revocation state listener failed')
      }
    }
  }

  function sync (): Promise<void> {
    if (running === undefined) {
      running = read().finally(() => { running = undefined })
      return running
    }
    next ??= running.catch(() => undefined).then(() => {
      next = undefined
      return sync()
    })
    return next
  }

  async function confirmClient (clientId: string): Promise<boolean> {
    if (clients.has(clientId)) return true
    if (absentClients.has(clientId)) return false
    // A read that lands meanwhile replaces both sets: what this lookup found belongs to the ones it started with.
    const [known, absent] = [clients, absentClients]
    const exists = await fastify.clientsRepository.findById(clientId) !== null
    if (exists) known.add(clientId)
    else absent.add(clientId)
    return exists
  }

  let failing = false
  const timer = setInterval(() => {
    sync().then(() => {
      if (failing) fastify.log.info('the revocation state is in sync again')
      failing = false
    }, (error: unknown) => {
      if (!failing) fastify.log.warn({ err: error }, 'the revocation state cannot be read; retrying')
      failing = true
    })
  }, options.syncIntervalMs)
  timer.unref()

  // Past REVOCATION_STALENESS_BOUND_SECONDS the replica's own checks refuse every token: alert well before.
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'revocation_state_lag_seconds',
    help: 'Time since this replica last read the revocation feed (+Inf before the first read).',
    registers: [fastify.metricsRegistry],
    collect () { this.set(lastSyncAt === 0 ? Number.POSITIVE_INFINITY : (Date.now() - lastSyncAt) / 1000) }
  })

  fastify.decorate('revocationState', {
    isRevoked (claims: { sid: string, sub: string, iat: number }) {
      if (revoked.has(claims.sid)) return true
      const user = usersNotBefore.get(claims.sub)
      return user !== undefined && claims.iat * 1000 < user.notBefore
    },
    clientExists: (clientId: string) => clients.has(clientId),
    confirmClient,
    assertCurrent () {
      if (lastSyncAt === 0) throw new RevocationStateUnavailableError()
      if (Date.now() - lastSyncAt > options.stalenessBoundMs) throw new RevocationStateStaleError()
    },
    lastSyncAt: () => lastSyncAt,
    revocationsAfter (seq: number) {
      // The log is in seq order: find the first entry after `seq` by bisection.
      let low = 0
      let high = log.length
      while (low < high) {
        const middle = (low + high) >>> 1
        if (log[middle]!.seq <= seq) low = middle + 1
        else high = middle
      }
      const now = Date.now()
      return { revocations: log.slice(low).filter((revocation) => revocation.expiresAt.getTime() > now), latestSeq: afterSeq }
    },
    subscribe (listener: RevocationStateListener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    sync
  })

  // Start with the state read, so the first requests are answered; without a
  // database the replica still starts (it answers 503 until a read succeeds).
  fastify.addHook('onReady', async () => { await sync().catch(() => { /* the timer retries */ }) })
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await next?.catch(() => undefined)
    await running?.catch(() => undefined)
  })
}

export default fp(revocationStatePlugin, { name: 'revocation-state', fastify: '5.x', dependencies: ['sessions-repository', 'clients-repository', 'metrics'] })
