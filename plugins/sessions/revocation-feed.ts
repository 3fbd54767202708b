import { ObjectId, type Collection } from 'mongodb'
import { isDuplicateKey } from '../mongodb.js'

export type RevocationReason = 'logout' | 'session_deleted' | 'all_sessions_deleted' | 'password_changed' | 'password_reset' | 'account_disabled' | 'account_deleted' | 'sessions_revoked_by_admin' | 'refresh_token_reused'

export interface RevocationDocument {
  /** The session id (unique, so each revoked session is recorded once); for a user-wide entry, an id of its own. */
  _id: ObjectId
  userId: ObjectId
  /** A user-wide entry: every token of the user issued before this is revoked (a reset, a disabled or deleted user). */
  notBefore?: Date
  /** Position in the revocation feed; unique, gapless in commit order. */
  seq: number
  revokedAt: Date
  reason: RevocationReason
  /** No access token of the session is valid after this; the record can go then. */
  expiresAt: Date
}

/** One revoked session (`sessionId`), or every token of a user issued before `notBefore` (`userId`). */
export interface RevocationRecord {
  sessionId?: string
  userId?: string
  notBefore?: Date
  seq: number
  revokedAt: Date
  expiresAt: Date
}

/**
 * The `notBefore` of a user-wide revocation: the next whole second. Tokens
 * carry `iat` in whole seconds, so a token issued earlier in this very second
 * is refused too; the service issues the user's next tokens with an `iat` no
 * earlier than it (see issueAccessToken), so a login right after a reset works.
 */
export function nextWholeSecond (now = Date.now()): Date {
  return new Date(Math.ceil(now / 1000) * 1000)
}

const MAX_SEQ_ATTEMPTS = 50
/** A poll this close to the feed's end reads the new records by seq, not by a range query (see revocationsBySeq). */
const NEWS_READ_BY_SEQ = 32
const SEQ_LOOKUPS_AT_ONCE = 8

/**
 * The revocation feed: one record per revoked session, each with `seq`, the
 * next number after the highest one, under a unique index. A writer picks N+1
 * only after N is committed, so sequence order is commit order and a reader
 * that has seen N+1 can never later find an N it missed.
 */
export function createRevocationFeed (revocations: Collection<RevocationDocument>, accessTokenTtlSeconds: number) {
  async function ensureIndexes () {
    await revocations.createIndex({ seq: 1 }, { unique: true, name: 'seq_unique' })
    // Purged by the timer only, never by a TTL index: the newest record must
    // survive, or its seq could be handed out again.
    await revocations.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
  }

  async function seqExists (seq: number): Promise<boolean> {
    return await revocations.findOne({ seq }, { projection: { _id: 1 } }) !== null
  }

  /**
   * The feed's latest seq. FerretDB pushes only `$natural` sorts down to
   * PostgreSQL, so `sort({ seq: -1 }).limit(1)` reads every record, on every
   * logout. Equality on `seq` is pushed down there (and
   * indexed on MongoDB), and the seqs in the collection are contiguous (handed
   * out gapless, purged only as a prefix), so the latest is found by probing
   * upward from the last one this process saw: one round trip when no other
   * replica wrote since, a few more (doubling, then bisecting) when one did.
   * If that seq is gone (purged), or none was seen yet, the sort decides.
   */
  let lastSeenSeq = 0
  async function latestSeq (): Promise<number> {
    const known = lastSeenSeq
    if (known > 0) {
      const [knownExists, nextExists] = await Promise.all([seqExists(known), seqExists(known + 1)])
      if (knownExists) {
        if (!nextExists) return known
        let present = known + 1
        let absent = known + 2
        while (await seqExists(absent)) {
          present = absent
          absent = known + 2 * (absent - known)
        }
        while (absent - present > 1) {
          const middle = Math.floor((present + absent) / 2)
          if (await seqExists(middle)) present = middle
          else absent = middle
        }
        return (lastSeenSeq = present)
      }
    }
    const latest = await revocations.find({}, { projection: { seq: 1 } }).sort({ seq: -1 }).limit(1).next()
    return (lastSeenSeq = latest?.seq ?? 0)
  }

  /**
   * The records in force among seqs `from`..`to`, in seq order, read one seq
   * at a time, a few at once: a range query is a full scan on FerretDB, an
   * equality lookup is not. A missing seq was purged.
   */
  async function revocationsBySeq (from: number, to: number): Promise<RevocationDocument[]> {
    const now = new Date()
    const found: RevocationDocument[] = []
    for (let first = from; first <= to; first += SEQ_LOOKUPS_AT_ONCE) {
      const seqs = Array.from({ length: Math.min(SEQ_LOOKUPS_AT_ONCE, to - first + 1) }, (_, i) => first + i)
      for (const revocation of await Promise.all(seqs.map((seq) => revocations.findOne({ seq })))) {
        if (revocation !== null && revocation.expiresAt > now) found.push(revocation)
      }
    }
    return found
  }

  /** Inserts an entry under the next seq; `_id` decides whether it is already recorded. */
  async function insert (entry: Omit<RevocationDocument, 'seq'>) {
    for (let attempt = 0; attempt < MAX_SEQ_ATTEMPTS; attempt++) {
      try {
        const seq = await latestSeq() + 1
        await revocations.insertOne({ ...entry, seq })
        lastSeenSeq = Math.max(lastSeenSeq, seq)
        return
      } catch (error) {
        if (!isDuplicateKey(error)) throw error
        // Either the entry is already recorded (done), or another revocation took this seq (try the next).
        if (await revocations.countDocuments({ _id: entry._id }, { limit: 1 }) === 1) return
      }
    }
    throw new Error('could not allocate a revocation sequence number')
  }

  async function record (session: { _id: ObjectId, userId: ObjectId }, reason: RevocationReason) {
    const revokedAt = new Date()
    await insert({ _id: session._id, userId: session.userId, revokedAt, reason, expiresAt: new Date(revokedAt.getTime() + accessTokenTtlSeconds * 1000) })
  }

  /** One entry for every token of a user issued before `notBefore` (see nextWholeSecond). */
  async function recordUser (userId: ObjectId, reason: RevocationReason, notBefore = nextWholeSecond()): Promise<Date> {
    const revokedAt = new Date()
    await insert({ _id: new ObjectId(), userId, notBefore, revokedAt, reason, expiresAt: new Date(notBefore.getTime() + accessTokenTtlSeconds * 1000) })
    return notBefore
  }

  async function list (afterSeq: number, limit: number): Promise<{ revocations: RevocationRecord[], latestSeq: number }> {
    // Read first: a revocation recorded after it is above it, so the caller's
    // next poll finds it. A caller already at the end (most polls) costs no scan.
    const latest = await latestSeq()
    if (afterSeq >= latest) return { revocations: [], latestSeq: latest }
    const found = latest - afterSeq <= Math.min(limit, NEWS_READ_BY_SEQ)
      ? await revocationsBySeq(afterSeq + 1, latest)
      : await revocations.find({ seq: { $gt: afterSeq }, expiresAt: { $gt: new Date() } }).sort({ seq: 1 }).limit(limit).toArray()
    return {
      revocations: found.map((revocation) => ({
        ...(revocation.notBefore === undefined
          ? { sessionId: revocation._id.toHexString() }
          : { userId: revocation.userId.toHexString(), notBefore: revocation.notBefore }),
        seq: revocation.seq,
        revokedAt: revocation.revokedAt,
        expiresAt: revocation.expiresAt
      })),
      latestSeq: latest
    }
  }

  /**
   * Records go as a prefix of the feed: those below the oldest one still in
   * force (an expired record above it waits, unserved), so the seqs left stay
   * contiguous for latestSeq(). The newest always stays, so its seq is never
   * handed out again.
   */
  async function purge (now: Date) {
    const oldestInForce = await revocations.find({ expiresAt: { $gt: now } }, { projection: { seq: 1 } }).sort({ seq: 1 }).limit(1).next()
    const keepFrom = oldestInForce?.seq ?? await latestSeq()
    await revocations.deleteMany({ seq: { $lt: keepFrom } })
  }

  return { ensureIndexes, record, recordUser, list, purge }
}
