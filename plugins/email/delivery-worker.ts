import type { FastifyBaseLogger } from 'fastify'
import type { ObjectId } from 'mongodb'
import type { MailTransport } from './mail-transport.js'
import type { OutboxDocument, OutboxStore } from './outbox-store.js'

export interface DeliveryWorkerOptions {
  maxAttempts: number
  retryBaseSeconds: number
  pollIntervalMs: number
  messageIdDomain: string
}

export interface DeliveryEvents {
  sent: (message: OutboxDocument) => void
  failed: (message: OutboxDocument) => void
  dead: (message: OutboxDocument) => void
}

/** Messages claimed and sent per pass; a full batch starts the next pass at once. */
const BATCH = 16
const MAX_BACKOFF_SECONDS = 3600

/**
 * The back-off before attempt `attempt + 1`: the base doubled per attempt,
 * capped, with "equal jitter" (between half and all of it), so replicas and
 * messages that failed together do not retry together.
 */
export function retryDelayMs (attempt: number, baseSeconds: number, random = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** (attempt - 1)) * 1000
  return ceiling / 2 + random() * ceiling / 2
}

/** What a failure is recorded as: a code, never a server's words (they may quote the recipient). */
function failureOf (error: unknown): string {
  const { responseCode, code } = error as { responseCode?: unknown, code?: unknown }
  if (typeof responseCode === 'number') return `SMTP ${responseCode}`
  return typeof code === 'string' ? code : 'ERROR'
}

/**
 * The outbox's sender, one per replica: every poll interval (and at once when
 * this replica queued something) it claims due messages and sends them. Every
 * replica runs one; the claims keep them from sending an attempt twice.
 */
export function createDeliveryWorker (store: OutboxStore, transport: MailTransport, options: DeliveryWorkerOptions, log: FastifyBaseLogger, events: DeliveryEvents) {
  let running: Promise<void> | undefined
  let again = false
  let stopped = false
  let failing = false
  // Sent, but the database was down when it was to be recorded: recorded at
  // the next pass, before the claim can expire and the message go out twice.
  const sentUnrecorded = new Map<string, { id: ObjectId, attempt: number, sentAt: Date }>()

  async function deliver (message: OutboxDocument) {
    const attempt = message.attempts + 1
    if (!await store.claim(message._id, attempt, new Date())) return
    try {
      await transport.send({
        messageId: `<${message._id.toHexString()}@${options.messageIdDomain}>`,
        to: message.to,
        subject: message.subject,
        text: message.text ?? '',
        ...(message.html === undefined ? {} : { html: message.html })
      })
    } catch (error) {
      const now = new Date()
      const lastError = failureOf(error)
      const dead = attempt >= options.maxAttempts
      events.failed(message)
      if (dead) {
        events.dead(message)
        log.error({ messageId: message._id.toHexString(), kind: message.kind, attempts: attempt, lastError }, 'email message dead: every delivery attempt failed')
      } else {
        log.warn({ messageId: message._id.toHexString(), kind: message.kind, attempt, lastError }, 'email delivery failed; retrying with back-off')
      }
      await store.markFailed(message._id, attempt, lastError, dead ? null : new Date(now.getTime() + retryDelayMs(attempt, options.retryBaseSeconds)), now)
      return
    }
    events.sent(message)
    const sentAt = new Date()
    try {
      await store.markSent(message._id, attempt, sentAt)
    } catch {
      sentUnrecorded.set(message._id.toHexString(), { id: message._id, attempt, sentAt })
    }
  }

  async function pass (): Promise<boolean> {
    for (const [key, { id, attempt, sentAt }] of sentUnrecorded) {
      await store.markSent(id, attempt, sentAt)
      sentUnrecorded.delete(key)
    }
    const due = await store.findDue(new Date(), BATCH)
    // One message's failure (the database went away mid-pass) leaves the others to finish.
    const results = await Promise.allSettled(due.map(deliver))
    const failure = results.find((result) => result.status === 'rejected')
    if (failure !== undefined) throw failure.reason
    return due.length === BATCH
  }

  async function loop () {
    try {
      // Another pass at once while a batch was full or someone woke us meanwhile.
      for (;;) {
        again = false
        if (await pass()) again = true
        if (!again || stopped) break
      }
      if (failing) log.info('the email outbox is reachable again; delivering')
      failing = false
    } catch (error) {
      // Once per outage, not once per poll.
      if (!failing) log.warn({ err: error }, 'the email outbox cannot be read; delivery resumes when the database is back')
      failing = true
    } finally {
      running = undefined
    }
  }

  /** Starts a pass now, or right after the one running. */
  function wake () {
    if (stopped) return
    if (running !== undefined) {
      again = true
      return
    }
    running = loop()
  }

  const timer = setInterval(wake, options.pollIntervalMs)
  timer.unref()

  return {
    wake,
    /** The pass running now, if any (tests wait for it). */
    idle: async () => { await running },
    async stop () {
      stopped = true
      clearInterval(timer)
      await running
    }
  }
}
