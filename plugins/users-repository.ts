import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { ObjectId, type Collection } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { EmailTakenError } from '../errors.js'
import { createIndexesOnReady, isDuplicateKey, mapDatabaseErrors, memoisedIndexes, toDatabaseError } from './mongodb.js'

interface UserDocument {
  _id: ObjectId
  email: string
  passwordHash: string
  /** Changes with the password; absent on accounts whose password never changed since it was introduced. */
  credentialsVersion?: string
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
  /** The same password hashed at a higher cost; only while the stored hash is still `previousHash`, so a concurrent change wins. */
  upgradePasswordHash: (id: string, previousHash: string, passwordHash: string) => Promise<void>
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
      const document: UserDocument = { _id, email, passwordHash, createdAt, updatedAt: createdAt }
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

    upgradePasswordHash: mapDatabaseErrors(async (id: string, previousHash: string, passwordHash: string) => {
      await users.updateOne({ _id: new ObjectId(id), passwordHash: previousHash }, { $set: { passwordHash, updatedAt: new Date() } })
    })
  }
}

async function usersRepositoryPlugin (fastify: FastifyInstance) {
  const repository = createUsersRepository(fastify.mongo.db!.collection<UserDocument>('users'))
  fastify.decorate('usersRepository', repository)

  createIndexesOnReady(fastify, 'users', repository.ensureIndexes)
}

export default fp(usersRepositoryPlugin, { name: 'users-repository', fastify: '5.x', dependencies: ['mongodb'] })
