import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { MongoClient } from 'mongodb'
import { freePort } from '../helper.js'

const run = promisify(execFile)

/** A database server owned by one test, which it can stop (crash) and start again on the same port. */
export interface DatabaseProcess {
  /** A URL to a database on this server. */
  url: (database: string) => string
  /** Kills the server, as a crash or a network partition would. */
  stop: () => Promise<void>
  start: () => Promise<void>
  close: () => Promise<void>
}

async function waitForPing (url: string, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 500 })
    try {
      await client.db().command({ ping: 1 })
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 200))
    } finally {
      await client.close().catch(() => undefined)
    }
  }
}

/**
 * FerretDB (FERRETDB_BIN, as .ci/run builds it) over a PostgreSQL database of
 * its own; without FERRETDB_BIN, a mongod from mongodb-memory-server.
 */
export async function startOwnDatabase (): Promise<DatabaseProcess> {
  const binary = process.env.FERRETDB_BIN
  if (binary !== undefined && binary !== '') return startFerretDb(binary)
  return startMongod()
}

async function startFerretDb (binary: string): Promise<DatabaseProcess> {
  const port = await freePort()
  const pgDatabase = `ferretdb_faults_${process.pid}_${randomBytes(3).toString('hex')}`
  const pg = ['-h', '127.0.0.1', '-U', 'postgres']
  await run('createdb', [...pg, '-T', 'template0', '-E', 'UTF8', '--locale=C', pgDatabase])
  let child: ChildProcess | undefined
  const url = (database: string) => `mongodb://127.0.0.1:${port}/${database}`

  async function start () {
    child = spawn(binary, ['-listen-addr', `127.0.0.1:${port}`, '-postgresql-url', `postgres://postgres@127.0.0.1:5432/${pgDatabase}?sslmode=disable`], { stdio: 'ignore' })
    await waitForPing(url('ping'))
  }
  async function stop () {
    if (child === undefined || child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
  await start()
  return {
    url,
    start,
    stop,
    async close () {
      await stop()
      await run('dropdb', [...pg, '--if-exists', pgDatabase]).catch(() => undefined)
    }
  }
}

async function startMongod (): Promise<DatabaseProcess> {
  const { MongoMemoryServer } = await import('mongodb-memory-server-core')
  const server = await MongoMemoryServer.create()
  const port = Number(new URL(server.getUri()).port)
  const url = (database: string) => `mongodb://127.0.0.1:${port}/${database}`
  return {
    url,
    stop: async () => { await server.stop({ doCleanup: false, force: true }) },
    start: async () => { await server.start(true); await waitForPing(url('ping')) },
    close: async () => { await server.stop() }
  }
}
