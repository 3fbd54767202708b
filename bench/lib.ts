import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { MongoClient } from 'mongodb'
import type { BenchAlgorithm } from './tokens.js'

const run = promisify(execFile)
export const root = fileURLToPath(new URL('..', import.meta.url))
export const cores = availableParallelism()
/** Server on core 0, load generator on core 1, where the machine has two. */
export const SERVER_CPUS = cores >= 2 ? '0' : undefined
export const LOAD_CPUS = cores >= 2 ? '1' : undefined

const benchDatabases: string[] = []

/** A fresh database on the test server for this run; dropBenchDatabases() removes it at the end. */
export function databaseUrl (): string {
  const base = process.env.MONGODB_URL
  if (base === undefined || base === '') {
    console.error('Set MONGODB_URL to the test database (see README: the same FerretDB or MongoDB the tests use).')
    process.exit(2)
  }
  const url = new URL(base)
  url.pathname = `/bench_${randomBytes(4).toString('hex')}`
  benchDatabases.push(url.toString())
  return url.toString()
}

/** Drops every database databaseUrl() handed out, so runs leave nothing behind on the test server. */
export async function dropBenchDatabases () {
  for (const url of benchDatabases.splice(0)) {
    const client = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5000 })
    try {
      await client.db().dropDatabase()
    } finally {
      await client.close()
    }
  }
}

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

export function pinned (cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]]
}

export interface RunningServer {
  url: string
  process: ChildProcess
  /** Peak resident set size so far (VmHWM), in MiB. */
  peakRssMiB: () => number
  stop: () => Promise<void>
}

/** Starts a compiled server (dist/server.js by default) pinned to the server core, and waits until it listens. */
export async function startServer (env: Record<string, string>, options: { script?: string, cpus?: string | undefined } = {}): Promise<RunningServer> {
  const port = await freePort()
  const script = options.script ?? join(root, 'dist/server.js')
  const [command, args] = pinned('cpus' in options ? options.cpus : SERVER_CPUS, process.execPath, [script])
  const child = spawn(command, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_IP_MAX: '1000000',
      RATE_LIMIT_EMAIL_MAX: '1000000',
      // Production needs an SMTP server; a bench that sends mail names its own.
      SMTP_URL: 'smtp://127.0.0.1:1',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  // The server's log is read as a log collector would, and only its tail is
  // kept (for the error below): at LOG_LEVEL=info it is megabytes a second.
  let output = ''
  const keepTail = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-8192) }
  child.stdout?.on('data', keepTail)
  child.stderr?.on('data', keepTail)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${output}`)
    try {
      if ((await fetch(`${url}/health/live`)).ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`server did not start: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    process: child,
    peakRssMiB () {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
    },
    async stop () {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  }
}

export interface WrkResult {
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  non2xx: number
}

function toMs (value: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(value)
  if (!match) return Number.NaN
  const number = Number(match[1])
  return match[2] === 'us' ? number / 1000 : match[2] === 's' ? number * 1000 : number
}

/** The run settings the profile benchmarks share, from BENCH_* variables, with a script's own defaults. */
export function benchSettings (defaults: { seconds: number, rounds: number }) {
  const env = process.env
  return {
    seconds: Number(env.BENCH_SECONDS ?? defaults.seconds),
    rounds: Number(env.BENCH_ROUNDS ?? defaults.rounds),
    connections: 50,
    algorithm: (env.BENCH_ALGORITHM ?? 'HS256') as BenchAlgorithm,
    // The service's default, the level the ceilings, A/B and forward-auth goals are set at.
    logLevel: env.BENCH_LOG_LEVEL ?? 'info',
    tokenIn: env.BENCH_TOKEN_IN === 'query' ? 'query' as const : 'header' as const
  }
}

/** Runs wrk (Debian package `wrk`) with a Lua script on the load core and parses its report. */
export async function wrk (url: string, options: { lua: string, connections: number, seconds: number }): Promise<WrkResult> {
  const script = join(tmpdir(), `wrk-${randomBytes(4).toString('hex')}.lua`)
  writeFileSync(script, options.lua)
  const [command, args] = pinned(LOAD_CPUS, 'wrk', ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency', '-s', script, url])
  const { stdout } = await run(command, args, { maxBuffer: 1 << 24 })
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    // Anchored: the "+/- Stdev" column (e.g. 87.99%) must not be read as a percentile.
    p50Ms: toMs(/^\s*50%\s+(\S+)$/m.exec(stdout)?.[1] ?? ''),
    p99Ms: toMs(/^\s*99%\s+(\S+)$/m.exec(stdout)?.[1] ?? ''),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0)
  }
}

/** One request to a running server: its status, its JSON body ({} when empty) and how long it took. */
export async function callJson<Body = Record<string, string>> (baseUrl: string, method: string, path: string, body?: unknown, token?: string) {
  const started = performance.now()
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Body, ms: performance.now() - started }
}

export async function requireWrk () {
  try {
    await run('wrk', ['--version']).catch((error: { stdout?: string }) => { if (!error.stdout?.includes('wrk')) throw error })
  } catch {
    console.error('wrk is needed for the benchmarks: apt-get install wrk')
    process.exit(2)
  }
}

/** A Lua script that cycles through tokens, one per request, never repeating one before the pool is used up. */
export function tokenRotationLua (tokens: string[], location: 'header' | 'query', path = '/user/profile'): string {
  const list = tokens.map((token) => `"${token}"`).join(',\n')
  const request = location === 'header'
    ? `wrk.format("GET", "${path}", { ["Authorization"] = "Bearer " .. tokens[i] })`
    : `wrk.format("GET", "${path}?secret_token=" .. tokens[i])`
  return `local tokens = {\n${list}\n}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  return ${request}\nend\n`
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export function machineLine (): string {
  return `${cores} cores, Node ${process.version}, server pinned to CPU ${SERVER_CPUS ?? '(unpinned)'}, load on CPU ${LOAD_CPUS ?? '(unpinned)'}`
}

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map((cell) => typeof cell === 'number' ? formatNumber(cell) : cell))]
  const widths = header.map((_, column) => Math.max(...cells.map((row) => String(row[column]).length)))
  const line = (row: Array<string | number>) => `| ${row.map((cell, column) => String(cell).padEnd(widths[column]!)).join(' | ')} |`
  return [line(cells[0]!), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n')
}

function formatNumber (value: number): string {
  if (!Number.isFinite(value)) return '—'
  if (Number.isInteger(value)) return value.toLocaleString('en-US')
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(2)
}
