import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { ObjectId, type Collection, type Filter } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { EmailTakenError } from '../errors.js'
import { createIndexesOnReady, isDuplicateKey, mapDatabaseErrors, memoisedIndexes, toDatabaseError } from './mongodb.js'

interface UserDocument {
  _id: ObjectId
  email: string
  passwordHash: string
  /** Changes with the password; absent on accounts whose password never changed since it was introduced. */
  credentialsVersion?: string
  /** True once a code sent to `email` came back; absent (false) on accounts older than verification. */
  emailVerified?: boolean
  /** The last password reset: sessions begun before it, under an earlier password, are over. */
  sessionsNotBefore?: Date
  /** Granted by an admin; absent on accounts that never had any. */
  roles?: string[]
  /** Set by an admin: no login, no refresh. */
  disabled?: boolean
  createdAt: Date
  updatedAt: Date
}

export interface UserRecord {
  id: string
  email: string
  passwordHash: string
  /**
   * A random value replaced by every password change: a session records the
   * one it was created under, so a change ends exactly the sessions created
   * under an earlier password, and a login can tell that the password it
   * checked was changed meanwhile.
   */
  credentialsVersion: string
  emailVerified: boolean
  /** The last password reset, or null: a session begun before it under another credentials version cannot refresh. */
  sessionsNotBefore: Date | null
  /** The roles granted to the account (the ADMIN_EMAILS bootstrap is added on top, see plugins/roles.ts). */
  roles: string[]
  disabled: boolean
  createdAt: Date
}

export interface UsersRepository {
  /** Creates the unique email index if missing; idempotent, retried after a failure. */
  ensureIndexes: () => Promise<void>
  /** Inserts a user; throws `EmailTakenError` when the (normalised) email exists. */
  create: (user: { email: string, passwordHash: string }) => Promise<UserRecord>
  findByEmail: (email: string) => Promise<UserRecord | null>
  findById: (id: string) => Promise<UserRecord | null>
  /** A new password: stores its hash and returns the new credentials version. */
  changePassword: (id: string, passwordHash: string) => Promise<string>
  /**
   * A reset by a code from the account's address: the new hash, a new
   * credentials version, the address verified, and every earlier session
   * refused from now on. Returns the new credentials version.
   */
  resetPassword: (id: string, passwordHash: string, sessionsNotBefore: Date) => Promise<string>
  /** The same password hashed at a higher cost; only while the stored hash is still `previousHash`, so a concurrent change wins. */
  upgradePasswordHash: (id: string, previousHash: string, passwordHash: string) => Promise<void>
  /** Marks the address verified, only while it is still the account's address; false when it is not. */
  markEmailVerified: (id: string, email: string) => Promise<boolean>
  /**
   * Moves the account from `fromEmail` to the verified `toEmail`, only while
   * its address is still `fromEmail` (false otherwise); throws
   * `EmailTakenError` when another account has `toEmail`.
   */
  changeEmail: (id: string, fromEmail: string, toEmail: string) => Promise<boolean>
  /** A page of users in id order, after `after` (an id), whose address starts with `emailPrefix`; one more than `limit` tells there is a next page. */
  list: (query: { emailPrefix?: string, after?: string, limit: number }) => Promise<UserRecord[]>
  /** Sets roles and/or the disabled flag; null when there is no such user. */
  update: (id: string, changes: { roles?: string[], disabled?: boolean }) => Promise<UserRecord | null>
  /** Deletes the account document; false when there was none. */
  deleteAccount: (id: string) => Promise<boolean>
  /** Takes back a signup that could not be completed (only while the address is unverified). */
  deleteUnverified: (id: string) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: UsersRepository
  }
}

/**
 * Account creation time with second precision, taken from the id itself, so it
 * can be told from `sub` alone (the profile route needs no database call).
 * An ObjectId starts with its creation time in seconds, as 8 hex digits, read
 * directly: the profile route would otherwise build an ObjectId per request.
 */
export function createdAtOf (id: string): Date {
  return new Date(Number.parseInt(id.slice(0, 8), 16) * 1000)
}

function toRecord (document: UserDocument): UserRecord {
  return {
    id: document._id.toHexString(),
    email: document.email,
    passwordHash: document.passwordHash,
    credentialsVersion: document.credentialsVersion ?? '',
    emailVerified: document.emailVerified === true,
    sessionsNotBefore: document.sessionsNotBefore ?? null,
    roles: document.roles ?? [],
    disabled: document.disabled === true,
    createdAt: document.createdAt
  }
}

export function createUsersRepository (users: Collection<UserDocument>): UsersRepository {
  const ensureIndexes = memoisedIndexes(() => users.createIndex({ email: 1 }, { unique: true, name: 'email_unique' }))

  return {
    ensureIndexes,

    async create ({ email, passwordHash }) {
      // The unique index is what makes concurrent signups safe: never insert without it.
      await ensureIndexes()
      const _id = new ObjectId()
      const createdAt = _id.getTimestamp()
      const document: UserDocument = { _id, email, passwordHash, emailVerified: false, createdAt, updatedAt: createdAt }
      try {
        await users.insertOne(document)
      } catch (error) {
        if (isDuplicateKey(error)) throw new EmailTakenError()
        throw toDatabaseError(error)
      }
      return toRecord(document)
    },

    findByEmail: mapDatabaseErrors(async (email: string) => {
      const document = await users.findOne({ email })
      return document ? toRecord(document) : null
    }),

    findById: mapDatabaseErrors(async (id: string) => {
      const document = await users.findOne({ _id: new ObjectId(id) })
      return document ? toRecord(document) : null
    }),

    changePassword: mapDatabaseErrors(async (id: string, passwordHash: string) => {
      const credentialsVersion = randomBytes(12).toString('base64url')
      await users.updateOne({ _id: new ObjectId(id) }, { $set: { passwordHash, credentialsVersion, updatedAt: new Date() } })
      return credentialsVersion
    }),

    resetPassword: mapDatabaseErrors(async (id: string, passwordHash: string, sessionsNotBefore: Date) => {
      const credentialsVersion = randomBytes(12).toString('base64url')
      await users.updateOne({ _id: new ObjectId(id) }, { $set: { passwordHash, credentialsVersion, emailVerified: true, sessionsNotBefore, updatedAt: new Date() } })
      return credentialsVersion
    }),

    upgradePasswordHash: mapDatabaseErrors(async (id: string, previousHash: string, passwordHash: string) => {
      await users.updateOne({ _id: new ObjectId(id), passwordHash: previousHash }, { $set: { passwordHash, updatedAt: new Date() } })
    }),

    markEmailVerified: mapDatabaseErrors(async (id: string, email: string) => {
      const { matchedCount } = await users.updateOne({ _id: new ObjectId(id), email }, { $set: { emailVerified: true, updatedAt: new Date() } })
      return matchedCount === 1
    }),

    list: mapDatabaseErrors(async ({ emailPrefix, after, limit }: { emailPrefix?: string, after?: string, limit: number }) => {
      const filter: Filter<UserDocument> = {}
      // Anchored at the start, so the email index serves it; the prefix is matched literally.
      if (emailPrefix !== undefined && emailPrefix !== '') filter.email = { $regex: `^${emailPrefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` }
      if (after !== undefined) filter._id = { $gt: new ObjectId(after) }
      const documents = await users.find(filter).sort({ _id: 1 }).limit(limit + 1).toArray()
      return documents.map(toRecord)
    }),

    update: mapDatabaseErrors(async (id: string, changes: { roles?: string[], disabled?: boolean }) => {
      const _id = new ObjectId(id)
      const { matchedCount } = await users.updateOne({ _id }, { $set: { ...changes, updatedAt: new Date() } })
      if (matchedCount === 0) return null
      const document = await users.findOne({ _id })
      return document === null ? null : toRecord(document)
    }),

    deleteAccount: mapDatabaseErrors(async (id: string) => {
      const { deletedCount } = await users.deleteOne({ _id: new ObjectId(id) })
      return deletedCount === 1
    }),

    deleteUnverified: mapDatabaseErrors(async (id: string) => {
      await users.deleteOne({ _id: new ObjectId(id), emailVerified: false })
    }),

    async changeEmail (id: string, fromEmail: string, toEmail: string) {
      try {
        // The unique index decides between this account and a signup (or another change) to the same address.
        const { matchedCount } = await users.updateOne({ _id: new ObjectId(id), email: fromEmail }, { $set: { email: toEmail, emailVerified: true, updatedAt: new Date() } })
        return matchedCount === 1
      } catch (error) {
        // MongoDB says 11000; FerretDB refuses an update that breaks a unique index with a generic error. Either way, another account has the address.
        if (isDuplicateKey(error) || await users.findOne({ email: toEmail, _id: { $ne: new ObjectId(id) } }).catch(() => null) !== null) throw new EmailTakenError()
        throw toDatabaseError(error)
      }
    }
  }
}

async function usersRepositoryPlugin (fastify: FastifyInstance) {
  const repository = createUsersRepository(fastify.mongo.db!.collection<UserDocument>('users'))
  fastify.decorate('usersRepository', repository)

  createIndexesOnReady(fastify, 'users', repository.ensureIndexes)
}

export default fp(usersRepositoryPlugin, { name: 'users-repository', fastify: '5.x', dependencies: ['mongodb'] })
