import { LRUMap } from 'mnemonist'
import { MongoServerError, ObjectId, type Collection, type Db } from 'mongodb'
import type { Config } from '../../config.js'
import { isDuplicateKey, mapDatabaseErrors, memoisedIndexes } from '../mongodb.js'
import { createRevocationFeed, type RevocationDocument, type RevocationReason, type RevocationRecord } from './revocation-feed.js'
import { decideRepeatedRotation } from './rotation-policy.js'
import { hashRefreshToken, newRefreshToken, sealSuccessor, sessionOfRefreshToken, unsealSuccessor } from './token-crypto.js'
import { OBJECT_ID } from '../../schemas/common.js'

export type { RevocationReason, RevocationRecord }

/**
 * Sessions and refresh tokens. Built for FerretDB as well as MongoDB, whose
 * updates are not atomic under concurrency there: every race-critical step is
 * a unique-index insert or a delete.
 *
 * - `sessions`: one document per login; deleting it revokes the session.
 * - `refresh_tokens`: a session's newest tokens (the current one and the one it
 *   replaced; older ones are deleted at each rotation and recognised by their
 *   MAC if presented again), keyed by their SHA-256,
 *   with a unique `parentHash`: a token has at most one successor, and the
 *   insert of that successor *is* the rotation's compare-and-set. The successor
 *   is stored encrypted under a key derived from its parent, so a concurrent
 *   request presenting the parent (another tab, a retry) can be handed the same
 *   successor, while the database alone can decrypt nothing.
 * - `revocations`: the revocation feed (revocation-feed.ts).
 *
 * The token crypto (token-crypto.ts) and the rotation rules
 * (rotation-policy.ts) are pure functions, tested without a database.
 */

interface SessionDocument {
  _id: ObjectId
  userId: ObjectId
  email: string
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  userAgent: string
  ip: string
  /** The user's credentials version at login (absent on sessions older than it). */
  credentialsVersion?: string
}

interface RefreshTokenDocument {
  /** SHA-256 of the token, base64url; never the token. */
  _id: string
  /** SHA-256 of the token it replaced, or `root:<session id>` for the login's token. */
  parentHash: string
  sessionId: ObjectId
  /** When it was issued: for a successor, the time of its parent's rotation. */
  issuedAt: Date
  expiresAt: Date
  /**
   * The token itself, AES-256-GCM under a key derived from the parent token,
   * for the grace window only: removed when the token is rotated, or by the
   * sealed-copy purge once `sealedUntil` has passed. Absent on a root.
   */
  sealedToken?: string
  sealedUntil?: Date
}

/** A successor whose rotation answered with an error (see rotateFrom): no client holds it. */
interface UndeliveredTokenDocument {
  /** The token's SHA-256, as in `refresh_tokens`. */
  _id: string
  sessionId: ObjectId
  expiresAt: Date
}

export interface SessionRecord {
  id: string
  userId: string
  email: string
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  userAgent: string
  ip: string
  /** The user's credentials version when the session began ('' before versions existed). */
  credentialsVersion: string
}

export type RotationResult =
  | { outcome: 'rotated' | 'grace', refreshToken: string, session: SessionRecord }
  | { outcome: 'unknown' | 'expired' | 'reused', sessionId?: string }

export type ExpiryMode = 'ttl-index' | 'purge-timer'

export interface SessionsRepository {
  ensureIndexes: () => Promise<void>
  /** How expired documents go away: a TTL index, or (where refused) the purge timer. Undefined until decided. */
  readonly expiryMode: ExpiryMode | undefined
  create: (session: { userId: string, email: string, credentialsVersion: string, userAgent: string, ip: string }) => Promise<{ session: SessionRecord, refreshToken: string }>
  /**
   * Rotates the refresh token. `admit`, when given, sees the token's session
   * before anything is written and may end it instead (answering `unknown`):
   * the caller's own checks fail, or pass, before the rotation commits.
   */
  rotate: (refreshToken: string, admit?: (session: SessionRecord) => Promise<RevocationReason | undefined>) => Promise<RotationResult>
  findSessionIdByRefreshToken: (refreshToken: string) => Promise<string | null>
  findLive: (userId: string, sessionId: string) => Promise<SessionRecord | null>
  listLive: (userId: string) => Promise<SessionRecord[]>
  /** Revokes a session; true when this call is the one that ended it. */
  revoke: (sessionId: string, reason: RevocationReason) => Promise<boolean>
  /**
   * Revokes every session of a user, but `exceptSessionId` and those created
   * under `keepCredentialsVersion` (logins with the new password); returns how many this call ended.
   */
  revokeAllOfUser: (userId: string, reason: RevocationReason, keep?: { exceptSessionId?: string, keepCredentialsVersion?: string }) => Promise<number>
  /**
   * Ends a user's sessions with one feed entry for the user (every token
   * issued before now) instead of one per session: a reset, a disabled or a
   * deleted user. Sessions of `keepCredentialsVersion` (begun under a new
   * password) stay. Returns the number of sessions ended.
   */
  revokeUser: (userId: string, reason: RevocationReason, options?: { keepCredentialsVersion?: string, notBefore?: Date }) => Promise<number>
  /** Still-relevant revocations with `seq` above `afterSeq`, in feed order; and the feed's latest seq. */
  listRevocations: (afterSeq: number, limit: number) => Promise<{ revocations: RevocationRecord[], latestSeq: number }>
  purgeExpired: () => Promise<void>
  /** Removes the sealed copies of successors whose grace window is over: no one may be handed them again. */
  purgeSealedSuccessors: () => Promise<void>
  /** Writes the pending `undelivered` marks (see rotate); throws while the database is down. */
  markUndelivered: () => Promise<void>
}

export type SessionsRepositoryOptions = Config['sessions']

/** Rounds of insert-or-resolve one rotation may take while concurrent retries withdraw and re-insert. */
const MAX_ROTATION_ATTEMPTS = 4
const MAX_UNDELIVERED_REMEMBERED = 10000
const NOT_IMPLEMENTED = 238

/** A logout ended the session while it rotated: the new token was withdrawn. */
class SessionEndedDuringRotation extends Error {}

function toRecord (document: SessionDocument): SessionRecord {
  return {
    id: document._id.toHexString(),
    userId: document.userId.toHexString(),
    email: document.email,
    createdAt: document.createdAt,
    lastUsedAt: document.lastUsedAt,
    expiresAt: document.expiresAt,
    userAgent: document.userAgent,
    ip: document.ip,
    credentialsVersion: document.credentialsVersion ?? ''
  }
}

export function createSessionsRepository (db: Db, options: SessionsRepositoryOptions, hooks: { onPurgeTimerNeeded: () => void, onBestEffortFailure: (error: unknown) => void }): SessionsRepository {
  const sessions: Collection<SessionDocument> = db.collection('sessions')
  const tokens: Collection<RefreshTokenDocument> = db.collection('refresh_tokens')
  const feed = createRevocationFeed(db.collection<RevocationDocument>('revocations'), options.accessTokenTtlSeconds)
  // Marks are inserted, never updated into the token document: on FerretDB a
  // concurrent update of that document (the sealed-copy purge) could write it away.
  const undeliveredTokens: Collection<UndeliveredTokenDocument> = db.collection('undelivered_refresh_tokens')
  const graceMs = options.refreshGraceSeconds * 1000
  let expiryMode: ExpiryMode | undefined

  /** A TTL index where the server has them; FerretDB refuses them (238), and then the purge timer does the job. */
  async function createExpiryIndex (collection: Collection<SessionDocument> | Collection<RefreshTokenDocument> | Collection<UndeliveredTokenDocument>): Promise<ExpiryMode> {
    try {
      await collection.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: 'expiresAt_ttl' })
      return 'ttl-index'
    } catch (error) {
      if (error instanceof MongoServerError && error.code === NOT_IMPLEMENTED) {
        await collection.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
        return 'purge-timer'
      }
      throw error
    }
  }

  async function createIndexes () {
    // Separate calls: a refused TTL index fails the whole createIndexes call on FerretDB.
    await tokens.createIndex({ parentHash: 1 }, { unique: true, name: 'parentHash_unique' })
    await tokens.createIndex({ sessionId: 1 }, { name: 'sessionId' })
    await tokens.createIndex({ sealedUntil: 1 }, { name: 'sealedUntil' })
    await sessions.createIndex({ userId: 1 }, { name: 'userId' })
    await feed.ensureIndexes()
    await undeliveredTokens.createIndex({ sessionId: 1 }, { name: 'sessionId' })
    const modes = await Promise.all([sessions, tokens, undeliveredTokens].map(createExpiryIndex))
    const mode = modes.includes('purge-timer') ? 'purge-timer' : 'ttl-index'
    if (expiryMode === undefined && mode === 'purge-timer') hooks.onPurgeTimerNeeded()
    expiryMode = mode
  }

  const ensureIndexes = memoisedIndexes(createIndexes)

  async function sessionExists (sessionId: ObjectId) {
    return (await sessions.countDocuments({ _id: sessionId }, { limit: 1 })) === 1
  }

  async function revoke (sessionId: string, reason: RevocationReason): Promise<boolean> {
    if (!OBJECT_ID.test(sessionId)) return false
    const _id = new ObjectId(sessionId)
    const session = await sessions.findOne({ _id })
    if (session === null) return false
    // Recorded before the session goes, so that a failure half-way leaves the
    // session's tokens findable and a retried logout completes the revocation.
    await feed.record(session, reason)
    const { deletedCount } = await sessions.deleteOne({ _id })
    await tokens.deleteMany({ sessionId: _id })
    await undeliveredTokens.deleteMany({ sessionId: _id })
    return deletedCount === 1
  }

  /**
   * Successors whose rotation answered with an error although their insert
   * may have committed (the database failed as it answered): no client holds
   * them, so their parent's retry is no theft. Known at once to this replica,
   * and marked in `undelivered_refresh_tokens` for the others as soon
   * as the database takes the write again.
   */
  const undelivered = new LRUMap<string, true>(MAX_UNDELIVERED_REMEMBERED)
  const undeliveredToMark = new Map<string, UndeliveredTokenDocument>()

  async function markUndelivered () {
    for (const [hash, mark] of undeliveredToMark) {
      try {
        await undeliveredTokens.insertOne(mark)
      } catch (error) {
        if (!isDuplicateKey(error)) throw error
      }
      undeliveredToMark.delete(hash)
    }
  }

  /**
   * Inserts the successor of the presented token: the insert is the
   * rotation's compare-and-set (one successor per parent). Once it is in,
   * nothing may turn the answer into an error, so every later step is best
   * effort; when the insert itself fails, its successor is recorded as
   * undelivered.
   */
  async function rotateFrom (presented: string, presentedHash: string, session: SessionDocument, now: Date, attempt = 0): Promise<RotationResult> {
    const successor = newRefreshToken(options.refreshTokenKey, session._id.toHexString())
    const successorHash = hashRefreshToken(successor)
    try {
      await tokens.insertOne({
        _id: successorHash,
        parentHash: presentedHash,
        sessionId: session._id,
        issuedAt: now,
        expiresAt: session.expiresAt,
        sealedToken: sealSuccessor(presented, successor),
        sealedUntil: new Date(now.getTime() + graceMs)
      })
    } catch (error) {
      if (isDuplicateKey(error)) return resolveRepeatedRotation(presented, presentedHash, session, now, attempt)
      if (undeliveredToMark.size < MAX_UNDELIVERED_REMEMBERED) undeliveredToMark.set(successorHash, { _id: successorHash, sessionId: session._id, expiresAt: session.expiresAt })
      undelivered.set(successorHash, true)
      throw error
    }
    await bestEffort(async () => {
      await sessions.updateOne({ _id: session._id }, { $set: { lastUsedAt: now } })
      // The presented token is no longer current: its own sealed copy serves no one.
      await tokens.updateOne({ _id: presentedHash }, { $unset: { sealedToken: '', sealedUntil: '' } })
      // Only the presented token and its successor are kept (what the grace
      // window and a retry need): older ones are known by their MAC if they
      // come back, so the store holds a constant number per session.
      await tokens.deleteMany({ sessionId: session._id, _id: { $nin: [presentedHash, successorHash] } })
      // A logout may have raced this rotation: its new token must not outlive it.
      if (!(await sessionExists(session._id))) {
        await tokens.deleteOne({ _id: successorHash })
        throw new SessionEndedDuringRotation()
      }
    })
    return { outcome: 'rotated', refreshToken: successor, session: toRecord({ ...session, lastUsedAt: now }) }
  }

  /**
   * The presented token already has a successor.
   * - The successor was used (rotated in turn): theft, the session is revoked.
   * - Within the grace window: the same successor again (parallel tabs, retries).
   * - Undelivered (see above): it is withdrawn, a delete only one concurrent
   *   retry can win, and the presented token rotates afresh.
   * - Otherwise: theft.
   */
  async function resolveRepeatedRotation (presented: string, presentedHash: string, session: SessionDocument, now: Date, attempt: number): Promise<RotationResult> {
    if (attempt >= MAX_ROTATION_ATTEMPTS) return { outcome: 'unknown' }
    const successor = await tokens.findOne({ parentHash: presentedHash })
    // Gone between our insert and this read: revoked (then the retry finds no session), or withdrawn by a concurrent retry.
    if (successor === null) return rotateFrom(presented, presentedHash, session, now, attempt + 1)
    const decision = decideRepeatedRotation({
      successorUsed: await tokens.countDocuments({ parentHash: successor._id }, { limit: 1 }) === 1,
      successorUndelivered: undelivered.has(successor._id) || await undeliveredTokens.countDocuments({ _id: successor._id }, { limit: 1 }) === 1,
      sinceIssuedMs: now.getTime() - successor.issuedAt.getTime(),
      graceMs,
      sealedCopyKept: successor.sealedToken !== undefined
    })
    if (decision === 'withdraw-and-rotate') {
      await tokens.deleteOne({ _id: successor._id, parentHash: presentedHash })
      return rotateFrom(presented, presentedHash, session, now, attempt + 1)
    }
    const refreshToken = decision === 'same-successor' ? unsealSuccessor(presented, successor.sealedToken!) : null
    if (refreshToken === null) return theft(session)
    if (!(await sessionExists(session._id))) return { outcome: 'unknown' }
    return { outcome: 'grace', refreshToken, session: toRecord(session) }
  }

  /**
   * A token the store does not have: one this service issued for a live
   * session (its MAC says so) was rotated away, since only a session's newest
   * tokens are kept: theft. Anything else is unknown.
   */
  async function rotatedAway (presented: string): Promise<RotationResult> {
    const sessionId = sessionOfRefreshToken(options.refreshTokenKey, presented)
    if (sessionId === null) return { outcome: 'unknown' }
    const session = await sessions.findOne({ _id: new ObjectId(sessionId) })
    if (session === null) return { outcome: 'unknown' }
    if (session.expiresAt.getTime() <= Date.now()) return { outcome: 'expired', sessionId }
    return theft(session)
  }

  async function theft (session: SessionDocument): Promise<RotationResult> {
    await revoke(session._id.toHexString(), 'refresh_token_reused')
    return { outcome: 'reused', sessionId: session._id.toHexString() }
  }

  /** Runs a step whose failure must not change the answer (it is logged by the caller's hook, not thrown). */
  async function bestEffort (step: () => Promise<void>) {
    try {
      await step()
    } catch (error) {
      if (error instanceof SessionEndedDuringRotation) throw error
      hooks.onBestEffortFailure(error)
    }
  }

  return {
    get expiryMode () { return expiryMode },
    ensureIndexes,

    create: mapDatabaseErrors(async ({ userId, email, credentialsVersion, userAgent, ip }) => {
      await ensureIndexes()
      const now = new Date()
      const document: SessionDocument = {
        _id: new ObjectId(),
        userId: new ObjectId(userId),
        email,
        createdAt: now,
        lastUsedAt: now,
        expiresAt: new Date(now.getTime() + options.ttlSeconds * 1000),
        userAgent,
        ip,
        credentialsVersion
      }
      const refreshToken = newRefreshToken(options.refreshTokenKey, document._id.toHexString())
      // Token first: should the session insert fail, an orphan token leads nowhere.
      await tokens.insertOne({
        _id: hashRefreshToken(refreshToken),
        parentHash: `root:${document._id.toHexString()}`,
        sessionId: document._id,
        issuedAt: now,
        expiresAt: document.expiresAt
      })
      await sessions.insertOne(document)
      return { session: toRecord(document), refreshToken }
    }),

    rotate: mapDatabaseErrors(async (presented: string, admit?: (session: SessionRecord) => Promise<RevocationReason | undefined>): Promise<RotationResult> => {
      await ensureIndexes()
      const now = new Date()
      const presentedHash = hashRefreshToken(presented)
      const token = await tokens.findOne({ _id: presentedHash })
      if (token === null) return rotatedAway(presented)
      const session = await sessions.findOne({ _id: token.sessionId })
      if (session === null) return { outcome: 'unknown' }
      if (session.expiresAt.getTime() <= now.getTime()) return { outcome: 'expired', sessionId: session._id.toHexString() }
      // Before anything is written: a failure here leaves the token as it was, to be retried.
      const endedBecause = admit === undefined ? undefined : await admit(toRecord(session))
      if (endedBecause !== undefined) {
        await revoke(session._id.toHexString(), endedBecause)
        return { outcome: 'unknown' }
      }

      try {
        return await rotateFrom(presented, presentedHash, session, now)
      } catch (error) {
        if (error instanceof SessionEndedDuringRotation) return { outcome: 'unknown' }
        throw error
      }
    }),

    findSessionIdByRefreshToken: mapDatabaseErrors(async (refreshToken: string) => {
      const token = await tokens.findOne({ _id: hashRefreshToken(refreshToken) })
      // A rotated-away token of the session (no longer stored) still names it.
      return token === null ? sessionOfRefreshToken(options.refreshTokenKey, refreshToken) : token.sessionId.toHexString()
    }),

    findLive: mapDatabaseErrors(async (userId: string, sessionId: string) => {
      if (!OBJECT_ID.test(sessionId)) return null
      const session = await sessions.findOne({ _id: new ObjectId(sessionId), userId: new ObjectId(userId), expiresAt: { $gt: new Date() } })
      return session === null ? null : toRecord(session)
    }),

    listLive: mapDatabaseErrors(async (userId: string) => {
      const found = await sessions.find({ userId: new ObjectId(userId), expiresAt: { $gt: new Date() } }).sort({ lastUsedAt: -1 }).toArray()
      return found.map(toRecord)
    }),

    revoke: mapDatabaseErrors(revoke),

    revokeAllOfUser: mapDatabaseErrors(async (userId: string, reason: RevocationReason, keep: { exceptSessionId?: string, keepCredentialsVersion?: string } = {}) => {
      const filter = keep.keepCredentialsVersion === undefined
        ? { userId: new ObjectId(userId) }
        : { userId: new ObjectId(userId), credentialsVersion: { $ne: keep.keepCredentialsVersion } }
      const owned = await sessions.find(filter, { projection: { _id: 1 } }).toArray()
      let revoked = 0
      for (const { _id } of owned) {
        const sessionId = _id.toHexString()
        if (sessionId !== keep.exceptSessionId && await revoke(sessionId, reason)) revoked += 1
      }
      return revoked
    }),

    revokeUser: mapDatabaseErrors(async (userId: string, reason: RevocationReason, keep: { keepCredentialsVersion?: string, notBefore?: Date } = {}) => {
      const owner = new ObjectId(userId)
      // The entry first: a failure half-way leaves the sessions for a retry, and their tokens already refused.
      await feed.recordUser(owner, reason, keep.notBefore)
      const filter = keep.keepCredentialsVersion === undefined ? { userId: owner } : { userId: owner, credentialsVersion: { $ne: keep.keepCredentialsVersion } }
      const owned = await sessions.find(filter, { projection: { _id: 1 } }).toArray()
      let ended = 0
      for (const { _id } of owned) {
        if ((await sessions.deleteOne({ _id })).deletedCount === 1) ended += 1
        await tokens.deleteMany({ sessionId: _id })
        await undeliveredTokens.deleteMany({ sessionId: _id })
      }
      return ended
    }),

    listRevocations: mapDatabaseErrors(feed.list),

    markUndelivered: mapDatabaseErrors(markUndelivered),

    purgeSealedSuccessors: mapDatabaseErrors(async () => {
      await tokens.updateMany({ sealedUntil: { $lte: new Date() } }, { $unset: { sealedToken: '', sealedUntil: '' } })
    }),

    purgeExpired: mapDatabaseErrors(async () => {
      const now = new Date()
      await Promise.all([
        sessions.deleteMany({ expiresAt: { $lte: now } }),
        tokens.deleteMany({ expiresAt: { $lte: now } }),
        undeliveredTokens.deleteMany({ expiresAt: { $lte: now } }),
        feed.purge(now)
      ])
    })
  }
}
