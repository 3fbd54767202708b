import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * What this replica knows, in memory, of revoked sessions and of the
     * service clients that exist: the forward-auth check answers from it
     * without a database read. Kept current by reading the revocation feed
     * and the client list every REVOCATION_SYNC_INTERVAL_MS, so a revocation
     * made on any replica reaches every one within that time.
     */
    revocationState: {
      /** Whether a user's token is revoked: its session, or its user from before the token was issued. */
      isRevoked: (claims: { sid: string, sub: string, iat: number }) => boolean
      clientExists: (clientId: string) => boolean
      /** False until the first read succeeded: until then nothing can be vouched for. */
      isSynced: () => boolean
      /** Reads the feed now (tests; a replica's own revocations). */
      sync: () => Promise<void>
    }
  }
}

const PAGE_SIZE = 1000

async function revocationStatePlugin (fastify: FastifyInstance, options: { syncIntervalMs: number }) {
  const revoked = new Map<string, number>()
  /** User-wide entries: the user id → the latest notBefore (ms) and until when it matters. */
  const usersNotBefore = new Map<string, { notBefore: number, expiresAt: number }>()
  let clients = new Set<string>()
  let afterSeq = 0
  let synced = false
  let running: Promise<void> | undefined

  async function read () {
    for (;;) {
      const { revocations, latestSeq } = await fastify.sessionsRepository.listRevocations(afterSeq, PAGE_SIZE)
      // The feed is behind what was read (a database restored from a backup): read it whole again.
      if (latestSeq < afterSeq) {
        afterSeq = 0
        continue
      }
      for (const revocation of revocations) {
        if (revocation.sessionId !== undefined) {
          revoked.set(revocation.sessionId, revocation.expiresAt.getTime())
        } else {
          const known = usersNotBefore.get(revocation.userId!)
          if (known === undefined || known.notBefore < revocation.notBefore!.getTime()) {
            usersNotBefore.set(revocation.userId!, { notBefore: revocation.notBefore!.getTime(), expiresAt: revocation.expiresAt.getTime() })
          }
        }
      }
      afterSeq = revocations.at(-1)?.seq ?? afterSeq
      if (revocations.length < PAGE_SIZE) break
    }
    clients = new Set((await fastify.clientsRepository.list()).map((client) => client.id))
    const now = Date.now()
    for (const [sessionId, expiresAt] of revoked) if (expiresAt <= now) revoked.delete(sessionId)
    for (const [userId, entry] of usersNotBefore) if (entry.expiresAt <= now) usersNotBefore.delete(userId)
    synced = true
  }

  function sync (): Promise<void> {
    running ??= read().finally(() => { running = undefined })
    return running
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

  fastify.decorate('revocationState', {
    isRevoked (claims: { sid: string, sub: string, iat: number }) {
      if (revoked.has(claims.sid)) return true
      const user = usersNotBefore.get(claims.sub)
      return user !== undefined && claims.iat * 1000 < user.notBefore
    },
    clientExists: (clientId: string) => clients.has(clientId),
    isSynced: () => synced,
    sync
  })

  fastify.addHook('onReady', async () => { sync().catch(() => { /* the timer retries */ }) })
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await running?.catch(() => undefined)
  })
}

export default fp(revocationStatePlugin, { name: 'revocation-state', fastify: '5.x', dependencies: ['sessions-repository', 'clients-repository'] })
