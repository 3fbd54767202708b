import fp from 'fastify-plugin'
import { Counter, Gauge } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { createIndexesOnReady, mapDatabaseErrors } from './mongodb.js'
import { createOutboxStore, type NewMessage } from './email/outbox-store.js'
import { createDeliveryWorker } from './email/delivery-worker.js'
import { logTransport, smtpTransport } from './email/mail-transport.js'

declare module 'fastify' {
  interface FastifyInstance {
    outbox: {
      /** Stores a message for delivery; resolves once it is in the database (then it is never lost). */
      enqueue: (message: NewMessage) => Promise<void>
      /** Deletes every message to `address`, sent or waiting (an account's deletion). */
      forget: (address: string) => Promise<void>
      /** Resolves when this replica's sender has nothing in hand (tests). */
      idle: () => Promise<void>
      ensureIndexes: () => Promise<void>
    }
  }
}

export type OutboxPluginOptions = Config['email'] & { purgeIntervalSeconds: number }

/**
 * The email outbox and this replica's sender: SMTP when SMTP_URL is set,
 * the log otherwise (never in production). Metrics: sent, failed attempts,
 * dead messages (by kind), the queue's depth and the age of its oldest message.
 */
async function outboxPlugin (fastify: FastifyInstance, options: OutboxPluginOptions) {
  const store = createOutboxStore(fastify.mongo.db!, { claimTimeoutSeconds: options.claimTimeoutSeconds })
  const transport = options.smtpUrl === undefined ? logTransport(fastify.log) : smtpTransport(options.smtpUrl, options.from)

  const registers = [fastify.metricsRegistry]
  const sent = new Counter({ name: 'email_sent_total', help: 'Email messages handed to the SMTP server, by kind.', labelNames: ['kind'] as const, registers })
  const failed = new Counter({ name: 'email_send_failures_total', help: 'Failed delivery attempts (each is retried until the last), by kind.', labelNames: ['kind'] as const, registers })
  const dead = new Counter({ name: 'email_dead_total', help: 'Messages given up on after EMAIL_MAX_ATTEMPTS attempts, by kind.', labelNames: ['kind'] as const, registers })

  // Read from the database at each scrape (the queue is shared by every replica); kept as they were while it is down.
  const backlog = { pending: 0, oldestAgeSeconds: 0 }
  const refreshBacklog = async () => {
    try {
      Object.assign(backlog, await store.backlog(new Date()))
    } catch {}
  }
  // eslint-disable-next-line no-new
  new Gauge({ name: 'email_outbox_pending', help: 'Messages waiting in the outbox (all replicas).', registers, async collect () { await refreshBacklog(); this.set(backlog.pending) } })
  // eslint-disable-next-line no-new
  new Gauge({ name: 'email_outbox_oldest_pending_age_seconds', help: 'Age of the oldest message still waiting in the outbox (0 when none).', registers, collect () { this.set(backlog.oldestAgeSeconds) } })

  const worker = createDeliveryWorker(store, transport, {
    maxAttempts: options.maxAttempts,
    retryBaseSeconds: options.retryBaseSeconds,
    pollIntervalMs: options.pollIntervalMs,
    messageIdDomain: options.messageIdDomain
  }, fastify.log, {
    sent: (message) => sent.inc({ kind: message.kind }),
    failed: (message) => failed.inc({ kind: message.kind }),
    dead: (message) => dead.inc({ kind: message.kind })
  })

  fastify.decorate('outbox', {
    enqueue: mapDatabaseErrors(async (message: NewMessage) => {
      await store.ensureIndexes()
      await store.enqueue(message)
      worker.wake()
    }),
    forget: mapDatabaseErrors(store.forget),
    idle: worker.idle,
    ensureIndexes: store.ensureIndexes
  })

  const purgeTimer = setInterval(() => {
    store.purge(new Date()).catch((error: unknown) => fastify.log.warn({ err: error }, 'purging finished email messages failed; retrying at the next interval'))
  }, options.purgeIntervalSeconds * 1000)
  purgeTimer.unref()

  createIndexesOnReady(fastify, 'outbox', store.ensureIndexes)
  fastify.addHook('onClose', async () => {
    clearInterval(purgeTimer)
    await worker.stop()
    transport.close()
  })
}

export default fp(outboxPlugin, { name: 'outbox', fastify: '5.x', dependencies: ['mongodb', 'metrics'] })
