import fp from 'fastify-plugin'
import fastifyMongodb from '@fastify/mongodb'
import { MongoClient, MongoNetworkError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb'
import { DatabaseUnavailableError } from '../errors.js'

export interface MongodbPluginOptions {
  url: string
  serverSelectionTimeoutMs: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Answers whether the database responds to a `ping` right now. */
    databaseIsReachable: () => Promise<boolean>
  }
}

/**
 * Maps the driver's "cannot reach the server" errors to our 503; anything else
 * is a bug or a server-side refusal and is rethrown unchanged (a 500).
 */
export function toDatabaseError (error: unknown): unknown {
  if (error instanceof MongoServerSelectionError || error instanceof MongoNetworkError || error instanceof MongoTopologyClosedError) {
    return new DatabaseUnavailableError()
  }
  return error
}

async function mongodbPlugin (fastify: import('fastify').FastifyInstance, options: MongodbPluginOptions) {
  // The client is created here and handed over, because @fastify/mongodb would
  // `connect()` during registration: the service must start (and answer
  // liveness) while the database is down. The driver connects on first use.
  const client = new MongoClient(options.url, {
    serverSelectionTimeoutMS: options.serverSelectionTimeoutMs,
    appName: 'auth-service'
  })
  await fastify.register(fastifyMongodb, { client, database: client.options.dbName })
  // @fastify/mongodb only closes clients it created itself.
  fastify.addHook('onClose', async () => { await client.close() })

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
