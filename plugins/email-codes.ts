import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { createIndexesOnReady, mapDatabaseErrors, memoisedIndexes } from './mongodb.js'
import { hashLinkToken, newCode, newLinkToken, normaliseCode } from './email/codes.js'

export type CodePurpose = 'password_reset' | 'email_verification' | 'email_change'

interface CodeDocument {
  _id: ObjectId
  purpose: CodePurpose
  userId: ObjectId
  /** The address the code was sent to (the new one, for an email change). */
  email: string
  /** For an email change: the account's address when it was asked for. */
  previousEmail?: string
  /** bcrypt of the normalised code: a code has about 40 bits, so a fast hash would fall to a leaked database. */
  codeHash: string
  /** SHA-256 of the link token. */
  tokenHash: string
  createdAt: Date
  expiresAt: Date
}

/** One document per try at a code: counting them after the insert bounds the tries even when they race. */
interface CodeAttemptDocument {
  _id: ObjectId
  codeId: ObjectId
  expiresAt: Date
}

export interface CodeRecord {
  id: string
  purpose: CodePurpose
  userId: string
  email: string
  previousEmail?: string
}

/** What proves receipt of a message: the typed code with its address, or the link's token. */
export type CodeProof = { email: string, code: string } | { token: string }

/** After this many tries, right or wrong, a code is dead. */
export const MAX_CODE_TRIES = 5

declare module 'fastify' {
  interface FastifyInstance {
    emailCodes: {
      /** A new code (and link token) for `purpose`; earlier codes of the user for it stop working. */
      issue: (purpose: CodePurpose, user: { userId: string, email: string, previousEmail?: string }, ttlSeconds: number) => Promise<{ code: string, token: string }>
      /**
       * Uses up the code the proof matches, or answers null: unknown, expired,
       * used, wrong, or dead after MAX_CODE_TRIES. A typed code is compared
       * with the address's live codes (a newer request replaces the user's
       * older one); an unknown address still pays for one comparison, so it
       * takes as long as a wrong code.
       */
      redeem: (purposes: CodePurpose[], proof: CodeProof) => Promise<CodeRecord | null>
      /**
       * The work of `issue` without a code: an address that gets no message
       * pays the same hash, so its answer takes about as long (no enumeration
       * by timing).
       */
      imitateIssue: () => Promise<void>
      /** Ends every code of the user (for the purposes given). */
      revokeOfUser: (userId: string, purposes: CodePurpose[]) => Promise<void>
      ensureIndexes: () => Promise<void>
    }
  }
}

function toRecord (document: CodeDocument): CodeRecord {
  return {
    id: document._id.toHexString(),
    purpose: document.purpose,
    userId: document.userId.toHexString(),
    email: document.email,
    ...(document.previousEmail === undefined ? {} : { previousEmail: document.previousEmail })
  }
}

async function emailCodesPlugin (fastify: FastifyInstance, options: { purgeIntervalSeconds: number }) {
  const db = fastify.mongo.db!
  const codes: Collection<CodeDocument> = db.collection('email_codes')
  const attempts: Collection<CodeAttemptDocument> = db.collection('email_code_attempts')

  const ensureIndexes = memoisedIndexes(async () => {
    await codes.createIndex({ tokenHash: 1 }, { unique: true, name: 'tokenHash_unique' })
    await codes.createIndex({ email: 1, createdAt: -1 }, { name: 'email_createdAt' })
    await codes.createIndex({ userId: 1 }, { name: 'userId' })
    await codes.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
    await attempts.createIndex({ codeId: 1 }, { name: 'codeId' })
    await attempts.createIndex({ expiresAt: 1 }, { name: 'expiresAt' })
  })

  /** Counts this try; false once the code has had its MAX_CODE_TRIES (it is then deleted). */
  async function tryAllowed (code: CodeDocument): Promise<boolean> {
    await attempts.insertOne({ _id: new ObjectId(), codeId: code._id, expiresAt: code.expiresAt })
    if (await attempts.countDocuments({ codeId: code._id }) <= MAX_CODE_TRIES) return true
    await codes.deleteOne({ _id: code._id })
    return false
  }

  /** Live codes for an address, newest first: usually one; two accounts may both wait for one address (a signup, and another's email change). */
  const MAX_CODES_PER_ADDRESS = 3

  fastify.decorate('emailCodes', {
    ensureIndexes,

    issue: mapDatabaseErrors(async (purpose: CodePurpose, user: { userId: string, email: string, previousEmail?: string }, ttlSeconds: number) => {
      await ensureIndexes()
      const code = newCode()
      const token = newLinkToken()
      const _id = new ObjectId()
      const createdAt = new Date()
      await codes.insertOne({
        _id,
        purpose,
        userId: new ObjectId(user.userId),
        email: user.email,
        ...(user.previousEmail === undefined ? {} : { previousEmail: user.previousEmail }),
        codeHash: await fastify.passwordHasher.hash(normaliseCode(code)),
        tokenHash: hashLinkToken(token),
        createdAt,
        expiresAt: new Date(createdAt.getTime() + ttlSeconds * 1000)
      })
      await codes.deleteMany({ userId: new ObjectId(user.userId), purpose, _id: { $ne: _id } })
      return { code, token }
    }),

    redeem: mapDatabaseErrors(async (purposes: CodePurpose[], proof: CodeProof) => {
      const now = new Date()
      let redeemed: CodeDocument | null = null
      if ('token' in proof) {
        redeemed = await codes.findOne({ tokenHash: hashLinkToken(proof.token), purpose: { $in: purposes }, expiresAt: { $gt: now } })
      } else {
        const typed = normaliseCode(proof.code)
        const candidates = await codes.find({ email: proof.email, purpose: { $in: purposes }, expiresAt: { $gt: now } })
          .sort({ createdAt: -1 }).limit(MAX_CODES_PER_ADDRESS).toArray()
        if (candidates.length === 0) await fastify.passwordHasher.verifyAgainstDummy(typed)
        for (const candidate of candidates) {
          if (await tryAllowed(candidate) && (await fastify.passwordHasher.verify(typed, candidate.codeHash)).matches) {
            redeemed = candidate
            break
          }
        }
      }
      if (redeemed === null) return null
      // Single use: of concurrent redemptions, the one delete that finds the code wins.
      const { deletedCount } = await codes.deleteOne({ _id: redeemed._id })
      return deletedCount === 1 ? toRecord(redeemed) : null
    }),

    async imitateIssue () {
      await fastify.passwordHasher.hash(normaliseCode(newCode()))
    },

    revokeOfUser: mapDatabaseErrors(async (userId: string, purposes: CodePurpose[]) => {
      await codes.deleteMany({ userId: new ObjectId(userId), purpose: { $in: purposes } })
    })
  })

  const purgeTimer = setInterval(() => {
    const now = new Date()
    Promise.all([codes.deleteMany({ expiresAt: { $lte: now } }), attempts.deleteMany({ expiresAt: { $lte: now } })])
      .catch((error: unknown) => fastify.log.warn({ err: error }, 'purging expired email codes failed; retrying at the next interval'))
  }, options.purgeIntervalSeconds * 1000)
  purgeTimer.unref()

  createIndexesOnReady(fastify, 'email code', ensureIndexes)
  fastify.addHook('onClose', async () => { clearInterval(purgeTimer) })
}

export default fp(emailCodesPlugin, { name: 'email-codes', fastify: '5.x', dependencies: ['mongodb', 'password-hasher'] })
