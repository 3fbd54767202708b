// Start-up time of the compiled server: from spawn to listening (the log line
// Fastify writes once the socket is bound) and to ready (/health/ready 200:
// database connected, indexes created), against the bare Fastify route's
// time to listening. Medians of several cold starts, server pinned to CPU 0.
// Usage: MONGODB_URL=… npm run bench:startup   (BENCH_STARTS)
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { SERVER_CPUS, databaseUrl, dropBenchDatabases, freePort, machineLine, median, pinned, root, table } from './lib.js'
import { signingSetup } from './tokens.js'

const STARTS = Number(process.env.BENCH_STARTS ?? 7)
const mongodbUrl = databaseUrl()
// The default algorithm (EdDSA): start-up includes importing its key.
const { env: keyEnv } = await signingSetup('EdDSA')
console.log(`# start-up: ${machineLine()}; ${STARTS} cold starts each`)

interface Start { listeningMs: number, readyMs: number }

async function startOnce (script: string, env: Record<string, string>, waitForReady: boolean): Promise<Start> {
  const port = await freePort()
  const [command, args] = pinned(SERVER_CPUS, process.execPath, [script])
  const started = performance.now()
  const child = spawn(command, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const listening = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk
      if (output.includes('listening')) resolve(performance.now() - started)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', () => reject(new Error(`server exited: ${output}`)))
  })
  const listeningMs = await listening
  let readyMs = Number.NaN
  if (waitForReady) {
    for (;;) {
      const response = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined)
      if (response?.status === 200) { readyMs = performance.now() - started; break }
      if (performance.now() - started > 30000) throw new Error(`never ready: ${output}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
  return { listeningMs, readyMs }
}

/** Node itself: spawn to exit of an empty script, the floor under both. */
async function nodeAlone (): Promise<number> {
  const started = performance.now()
  await new Promise((resolve) => spawn(process.execPath, ['-e', '0']).once('exit', resolve))
  return performance.now() - started
}

const service: Start[] = []
const bare: Start[] = []
const empty: number[] = []
// Alternated, so drift hits all three alike.
for (let i = 0; i < STARTS; i++) {
  empty.push(await nodeAlone())
  bare.push(await startOnce(join(root, 'bench/bare-server.mjs'), {}, false))
  service.push(await startOnce(join(root, 'dist/server.js'), { ...keyEnv, MONGODB_URL: mongodbUrl }, true))
}

console.log(table(['process', 'to listening ms', 'to ready ms'], [
  ['node -e 0 (spawn to exit)', median(empty), '—'],
  ['bare Fastify route', median(bare.map((start) => start.listeningMs)), '—'],
  ['auth-service', median(service.map((start) => start.listeningMs)), median(service.map((start) => start.readyMs))]
]))
console.log('ready = /health/ready answers 200 (database connected, indexes exist)')
await dropBenchDatabases()
