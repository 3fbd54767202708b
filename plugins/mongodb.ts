import fp from 'fastify-plugin'
import fastifyMongodb from '@fastify/mongodb'
import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb'
import type { FastifyInstance } from 'fastify'
import { DatabaseUnavailableError } from '../errors.js'

const CONNECT_RETRY_MS = 500

export interface MongodbPluginOptions {
  url: string
  database: string
  serverSelectionTimeoutMs: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Answers whether the database responds to a `ping` right now. */
    databaseIsReachable: () => Promise<boolean>
  }
}

const DUPLICATE_KEY = 11000

/** A unique index refused an insert: on FerretDB as on MongoDB, the one compare-and-set that is atomic. */
export function isDuplicateKey (error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY
}

/**
 * Socket errors the driver lets through unwrapped: writing to a connection
 * the server has just closed (it died) fails with Node's own EPIPE.
 */
const SOCKET_ERROR_CODES = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT'])

/**
 * Maps the driver's "cannot reach the server" errors to our 503; anything else
 * is a bug or a server-side refusal and is rethrown unchanged (a 500).
 */
export function toDatabaseError (error: unknown): unknown {
  if (error instanceof MongoServerSelectionError || error instanceof MongoNetworkError || error instanceof MongoTopologyClosedError ||
    SOCKET_ERROR_CODES.has((error as { code?: unknown } | null)?.code as string)) {
    return new DatabaseUnavailableError()
  }
  return error
}

/** Wraps a repository method so that driver "unreachable" errors become our 503. */
export function mapDatabaseErrors<Args extends unknown[], Result> (method: (...args: Args) => Promise<Result>) {
  return async (...args: Args): Promise<Result> => {
    try {
      return await method(...args)
    } catch (error) {
      throw toDatabaseError(error)
    }
  }
}

/**
 * Index creation, run once: the same promise for every caller until it
 * fails, then tried afresh by the next one (the database may be back).
 */
export function memoisedIndexes (create: () => Promise<unknown>): () => Promise<void> {
  let created: Promise<void> | undefined
  return async function ensureIndexes () {
    created ??= create().then(() => undefined, (error: unknown) => {
      created = undefined
      throw toDatabaseError(error)
    })
    return created
  }
}

/**
 * Starts a repository's index creation when the service is ready, without
 * holding start-up hostage to the database: the service must come up (and
 * report not-ready) while it is down; the repository retries on first use.
 */
export function createIndexesOnReady (fastify: FastifyInstance, what: string, ensureIndexes: () => Promise<void>) {
  fastify.addHook('onReady', async () => {
    ensureIndexes().catch((error: unknown) => {
      fastify.log.warn({ err: error }, `could not create the ${what} indexes yet; retrying on first use`)
    })
  })
}

async function mongodbPlugin (fastify: FastifyInstance, options: MongodbPluginOptions) {
  // The client is created here and handed over, because @fastify/mongodb would
  // `connect()` during registration: the service must start (and answer
  // liveness) while the database is down. The driver connects on first use.
  const client = new MongoClient(options.url, {
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs,
    appName: 'auth-service'
  })
  await fastify.register(fastifyMongodb, { client, database: options.database })

  // Once connected, the driver rides out outages by itself. But a connect
  // that fails (the database is down at start-up) leaves its topology closed
  // for good: every later operation fails with "Topology is closed". So the
  // first connection is made here, retried until it succeeds; meanwhile
  // operations fail fast with a 503.
  let closing = false
  let retryTimer: NodeJS.Timeout | undefined
  let failures = 0
  function connectUntilConnected () {
    client.connect().then(() => {
      if (failures > 0) fastify.log.info('connected to the database')
    }, (error: unknown) => {
      if (closing) return
      failures += 1
      if (failures === 1) fastify.log.warn({ err: error }, 'the database is not reachable; retrying until it is')
      retryTimer = setTimeout(connectUntilConnected, CONNECT_RETRY_MS)
    })
  }
  fastify.addHook('onReady', async () => { connectUntilConnected() })
  // @fastify/mongodb only closes clients it created itself.
  fastify.addHook('onClose', async () => {
    closing = true
    clearTimeout(retryTimer)
    await client.close()
  })

  fastify.decorate('databaseIsReachable', async function databaseIsReachable () {
    try {
      await client.db().command({ ping: 1 })
      return true
    } catch {
      return false
    }
  })
}

export default fp(mongodbPlugin, { name: 'mongodb', fastify: '5.x' })
