import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createIndexesOnReady } from './mongodb.js'
import { createSessionsRepository, type SessionsRepository, type SessionsRepositoryOptions } from './sessions/session-store.js'

export type { RevocationReason, RevocationRecord, RotationResult, SessionRecord, SessionsRepository } from './sessions/session-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessionsRepository: SessionsRepository
  }
}

/**
 * The sessions repository on the instance (sessions/session-store.ts), with
 * its timers: the purge of expired documents, and, every grace window, the
 * purge of sealed successors and the writing of undelivered marks.
 */
async function sessionsRepositoryPlugin (fastify: FastifyInstance, options: SessionsRepositoryOptions) {
  const repository = createSessionsRepository(fastify.mongo.db!, options, {
    onBestEffortFailure (error) {
      fastify.log.warn({ err: error }, 'a clean-up step after a refresh-token rotation failed; the rotation stands')
    },
    onPurgeTimerNeeded () {
      fastify.log.warn({ intervalSeconds: options.purgeIntervalSeconds },
        'the database refuses TTL indexes: expired sessions and refresh tokens are purged on a timer instead')
    }
  })
  fastify.decorate('sessionsRepository', repository)

  // Always runs: revocation records are purged by it on every server; sessions
  // and tokens too where TTL indexes are refused (and harmlessly elsewhere).
  const purgeTimer = setInterval(() => {
    repository.purgeExpired().catch((error: unknown) => fastify.log.warn({ err: error }, 'purging expired sessions failed; retrying at the next interval'))
  }, options.purgeIntervalSeconds * 1000)
  purgeTimer.unref()

  // Each grace window: a sealed successor outlives its use by at most one
  // more; undelivered marks reach the database within the same time.
  const sealedPurgeTimer = setInterval(() => {
    repository.purgeSealedSuccessors().catch((error: unknown) => fastify.log.warn({ err: error }, 'purging sealed refresh-token copies failed; retrying at the next interval'))
    repository.markUndelivered().catch(() => { /* the database is still down: the marks wait for the next interval */ })
  }, Math.max(1, options.refreshGraceSeconds) * 1000)
  sealedPurgeTimer.unref()

  createIndexesOnReady(fastify, 'sessions', repository.ensureIndexes)
  fastify.addHook('onClose', async () => {
    clearInterval(purgeTimer)
    clearInterval(sealedPurgeTimer)
  })
}

export default fp(sessionsRepositoryPlugin, { name: 'sessions-repository', fastify: '5.x', dependencies: ['mongodb'] })
