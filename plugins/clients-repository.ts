import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { Collection } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { isDuplicateKey, mapDatabaseErrors } from './mongodb.js'

interface ClientSecret {
  /** SHA-256 of the secret: a 256-bit random secret cannot be recovered from a fast hash, so no slow one is needed. */
  hash: string
  createdAt: Date
  /** Set on the previous secret when a new one is made: it works until then. */
  expiresAt?: Date
}

interface ClientDocument {
  /** The client id, e.g. `svc_3f9a…`. */
  _id: string
  name: string
  scopes: string[]
  /** The `aud` of the client's tokens; the service's JWT_AUDIENCE when absent. */
  audience?: string
  secrets: ClientSecret[]
  createdAt: Date
}

export interface ClientRecord {
  id: string
  name: string
  scopes: string[]
  audience: string | null
  createdAt: Date
}

export interface ClientsRepository {
  /** A new client and its secret (shown once: only its hash is kept). */
  create: (client: { name: string, scopes: string[], audience?: string }) => Promise<{ client: ClientRecord, secret: string }>
  list: () => Promise<ClientRecord[]>
  findById: (id: string) => Promise<ClientRecord | null>
  /** A new secret; the previous one keeps working for `overlapSeconds`. Null when there is no such client. */
  rotateSecret: (id: string, overlapSeconds: number) => Promise<string | null>
  /** False when there was no such client. */
  delete: (id: string) => Promise<boolean>
  /**
   * Creates a client declared by configuration (SERVICE_CLIENTS), or resets
   * it to its declaration: name, scopes, audience and the one secret.
   */
  ensureDeclared: (client: { id: string, secret: string, scopes: string[], audience?: string, name?: string }) => Promise<void>
  /** The client whose id and (current or overlapping) secret these are, or null. */
  authenticate: (id: string, secret: string) => Promise<ClientRecord | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    clientsRepository: ClientsRepository
  }
}

/** A generated id (`svc_` and 24 hex digits) or a declared one (SERVICE_CLIENTS). */
const CLIENT_ID = /^(?:svc_[0-9a-f]{24}|[a-z][a-z0-9-]{2,63})$/

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest()

function toRecord (document: ClientDocument): ClientRecord {
  return { id: document._id, name: document.name, scopes: document.scopes, audience: document.audience ?? null, createdAt: document.createdAt }
}

export function createClientsRepository (clients: Collection<ClientDocument>): ClientsRepository {
  return {
    create: mapDatabaseErrors(async ({ name, scopes, audience }: { name: string, scopes: string[], audience?: string }) => {
      const secret = randomBytes(32).toString('base64url')
      const createdAt = new Date()
      const document: ClientDocument = {
        _id: `svc_${randomBytes(12).toString('hex')}`,
        name,
        scopes,
        ...(audience === undefined ? {} : { audience }),
        secrets: [{ hash: hashSecret(secret).toString('base64url'), createdAt }],
        createdAt
      }
      await clients.insertOne(document)
      return { client: toRecord(document), secret }
    }),

    list: mapDatabaseErrors(async () => (await clients.find().sort({ createdAt: 1 }).toArray()).map(toRecord)),

    findById: mapDatabaseErrors(async (id: string) => {
      if (!CLIENT_ID.test(id)) return null
      const document = await clients.findOne({ _id: id })
      return document === null ? null : toRecord(document)
    }),

    rotateSecret: mapDatabaseErrors(async (id: string, overlapSeconds: number) => {
      if (!CLIENT_ID.test(id)) return null
      const document = await clients.findOne({ _id: id })
      if (document === null) return null
      const now = new Date()
      const secret = randomBytes(32).toString('base64url')
      // The newest earlier secret overlaps; any older one is gone.
      const previous = document.secrets.filter((entry) => entry.expiresAt === undefined || entry.expiresAt > now).at(-1)
      const secrets: ClientSecret[] = [
        ...(previous === undefined ? [] : [{ ...previous, expiresAt: new Date(now.getTime() + overlapSeconds * 1000) }]),
        { hash: hashSecret(secret).toString('base64url'), createdAt: now }
      ]
      const { matchedCount } = await clients.updateOne({ _id: id }, { $set: { secrets } })
      return matchedCount === 1 ? secret : null
    }),

    delete: mapDatabaseErrors(async (id: string) => {
      if (!CLIENT_ID.test(id)) return false
      return (await clients.deleteOne({ _id: id })).deletedCount === 1
    }),

    ensureDeclared: mapDatabaseErrors(async ({ id, secret, scopes, audience, name }: { id: string, secret: string, scopes: string[], audience?: string, name?: string }) => {
      const hash = hashSecret(secret).toString('base64url')
      const existing = await clients.findOne({ _id: id })
      const matches = existing !== null && existing.name === (name ?? id) && existing.audience === audience &&
        existing.scopes.join(' ') === scopes.join(' ') && existing.secrets.length === 1 && existing.secrets[0]!.hash === hash
      if (matches) return
      const now = new Date()
      const declared = { name: name ?? id, scopes, secrets: [{ hash, createdAt: now }] }
      const update = audience === undefined
        ? { $set: declared, $unset: { audience: '' as const }, $setOnInsert: { createdAt: now } }
        : { $set: { ...declared, audience }, $setOnInsert: { createdAt: now } }
      // Every replica writes the same declaration: whichever write lands last, the result is the same.
      await clients.updateOne({ _id: id }, update, { upsert: true }).catch((error: unknown) => { if (!isDuplicateKey(error)) throw error })
    }),

    authenticate: mapDatabaseErrors(async (id: string, secret: string) => {
      if (!CLIENT_ID.test(id)) return null
      const document = await clients.findOne({ _id: id })
      if (document === null) return null
      const presented = hashSecret(secret)
      const now = new Date()
      const matches = document.secrets.some((entry) =>
        (entry.expiresAt === undefined || entry.expiresAt > now) && timingSafeEqual(Buffer.from(entry.hash, 'base64url'), presented))
      return matches ? toRecord(document) : null
    })
  }
}

async function clientsRepositoryPlugin (fastify: FastifyInstance) {
  const repository = createClientsRepository(fastify.mongo.db!.collection<ClientDocument>('clients'))
  // Clients are found by id, their primary key: no index to create.
  fastify.decorate('clientsRepository', repository)
}

export default fp(clientsRepositoryPlugin, { name: 'clients-repository', fastify: '5.x', dependencies: ['mongodb'] })
