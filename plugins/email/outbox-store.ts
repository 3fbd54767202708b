import { ObjectId, type Collection, type Db } from 'mongodb'
import { isDuplicateKey, memoisedIndexes } from '../mongodb.js'
import type { MessageKind, RenderedMessage } from './templates.js'

/**
 * The outbox: every message is a document before any endpoint answers, and
 * leaves only once it was sent (or given up on). Built for FerretDB, whose
 * updates are not atomic under concurrency: who sends an attempt is decided
 * by a unique-index insert (one claim document per message and attempt).
 */
export interface OutboxDocument {
  _id: ObjectId
  kind: MessageKind
  to: string
  subject: string
  /** The body; removed once the message is sent or dead (it may carry a code). */
  text?: string
  html?: string
  state: 'pending' | 'sent' | 'dead'
  /** Attempts made so far. */
  attempts: number
  /** When the next attempt may start. */
  dueAt: Date
  createdAt: Date
  sentAt?: Date
  /** The last failure: an SMTP response code or a network error code, never a body. */
  lastError?: string
  /** Sent and dead messages are kept this long, then purged. */
  expiresAt?: Date
}

/** `_id` is `<message id>:<attempt>`: its insert is the claim of that attempt. */
interface ClaimDocument {
  _id: string
  expiresAt: Date
}

export interface NewMessage extends RenderedMessage {
  kind: MessageKind
  to: string
}

/** Sent and dead messages are kept for a week (what was sent, and when), without their bodies. */
const KEEP_FINISHED_MS = 7 * 24 * 3600 * 1000

export function createOutboxStore (db: Db, options: { claimTimeoutSeconds: number }) {
  const messages: Collection<OutboxDocument> = db.collection('outbox')
  const claims: Collection<ClaimDocument> = db.collection('outbox_claims')
  const claimTimeoutMs = options.claimTimeoutSeconds * 1000

  const ensureIndexes = memoisedIndexes(async () => {
    await messages.createIndex({ state: 1, dueAt: 1 }, { name: 'state_dueAt' })
    await messages.createIndex({ expiresAt: 1 }, { name: 'expiresAt', sparse: true })
    await claims.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
  })

  /** Inserts attempt's claim; an expired claim of the same attempt (its replica died) is removed first, by exactly one taker. */
  async function claim (id: ObjectId, attempt: number, now: Date): Promise<boolean> {
    const _id = `${id.toHexString()}:${attempt}`
    try {
      await claims.insertOne({ _id, expiresAt: new Date(now.getTime() + claimTimeoutMs) })
    } catch (error) {
      if (!isDuplicateKey(error)) throw error
      const held = await claims.findOne({ _id })
      if (held === null || held.expiresAt > now) return false
      const { deletedCount } = await claims.deleteOne({ _id, expiresAt: held.expiresAt })
      if (deletedCount !== 1) return false
      return claim(id, attempt, now)
    }
    // Other replicas skip the message until the claim could have expired.
    await messages.updateOne({ _id: id, state: 'pending' }, { $set: { dueAt: new Date(now.getTime() + claimTimeoutMs) } })
    return true
  }

  return {
    ensureIndexes,

    async enqueue (message: NewMessage): Promise<ObjectId> {
      const _id = new ObjectId()
      const now = new Date()
      await messages.insertOne({ _id, ...message, state: 'pending', attempts: 0, dueAt: now, createdAt: now })
      return _id
    },

    /** Pending messages whose time has come, oldest first. */
    findDue (now: Date, limit: number): Promise<OutboxDocument[]> {
      return messages.find({ state: 'pending', dueAt: { $lte: now } }).sort({ dueAt: 1 }).limit(limit).toArray()
    },

    claim,

    async markSent (id: ObjectId, attempt: number, now: Date) {
      await messages.updateOne({ _id: id, state: 'pending' }, {
        $set: { state: 'sent', attempts: attempt, sentAt: now, expiresAt: new Date(now.getTime() + KEEP_FINISHED_MS) },
        $unset: { text: '', html: '', lastError: '' }
      })
    },

    /** A failed attempt: due again at `retryAt`, or dead when there is none. */
    async markFailed (id: ObjectId, attempt: number, lastError: string, retryAt: Date | null, now: Date) {
      if (retryAt === null) {
        await messages.updateOne({ _id: id, state: 'pending' }, {
          $set: { state: 'dead', attempts: attempt, lastError, expiresAt: new Date(now.getTime() + KEEP_FINISHED_MS) },
          $unset: { text: '', html: '' }
        })
      } else {
        await messages.updateOne({ _id: id, state: 'pending' }, { $set: { attempts: attempt, lastError, dueAt: retryAt } })
      }
    },

    /** Deletes every message to `address`, sent or not (a deleted account's personal data). */
    async forget (address: string) {
      await messages.deleteMany({ to: address })
    },

    /** Queue depth and the age of the oldest pending message, for the metrics. */
    async backlog (now: Date): Promise<{ pending: number, oldestAgeSeconds: number }> {
      const [pending, oldest] = await Promise.all([
        messages.countDocuments({ state: 'pending' }),
        messages.find({ state: 'pending' }, { projection: { createdAt: 1 } }).sort({ createdAt: 1 }).limit(1).next()
      ])
      return { pending, oldestAgeSeconds: oldest === null ? 0 : Math.max(0, (now.getTime() - oldest.createdAt.getTime()) / 1000) }
    },

    async purge (now: Date) {
      await Promise.all([
        messages.deleteMany({ expiresAt: { $lte: now } }),
        // A claim is kept a day past its expiry: long after any attempt it decided.
        claims.deleteMany({ expiresAt: { $lte: new Date(now.getTime() - 24 * 3600 * 1000) } })
      ])
    }
  }
}

export type OutboxStore = ReturnType<typeof createOutboxStore>
