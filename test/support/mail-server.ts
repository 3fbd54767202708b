import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import tap from 'tap'
import { freePort, sleep } from '../helper.js'
import { mailpitBinary } from '../../scripts/mailpit.js'

/** A message as Mailpit's API shows it. */
export interface ReceivedMessage {
  ID: string
  MessageID: string
  To: Array<{ Address: string }>
  Subject: string
  Text: string
  HTML: string
}

/** A real SMTP server (Mailpit) and its API, to read what the service sent. */
export interface MailServer {
  smtpUrl: string
  /** Every message to `address`, oldest first, with its text. */
  messagesTo: (address: string) => Promise<ReceivedMessage[]>
  /** Waits until `count` messages to `address` have arrived, and returns them, oldest first. */
  waitForMessages: (address: string, count?: number, timeoutMs?: number) => Promise<ReceivedMessage[]>
}

export interface OwnMailServer extends MailServer {
  /** Kills Mailpit, as an SMTP outage would; the messages it had are kept (it has a database file). */
  stop: () => Promise<void>
  start: () => Promise<void>
  close: () => Promise<void>
  /** Mailpit's chaos: this percentage of recipients is refused with a 451 (a temporary SMTP error). Needs `--enable-chaos`. */
  refuseRecipients: (probability: number) => Promise<void>
}

function client (apiUrl: string, smtpUrl: string): MailServer {
  async function get<T> (path: string): Promise<T> {
    const response = await fetch(`${apiUrl}${path}`)
    if (!response.ok) throw new Error(`Mailpit ${path}: ${response.status}`)
    return await response.json() as T
  }
  async function messagesTo (address: string): Promise<ReceivedMessage[]> {
    const { messages } = await get<{ messages: Array<{ ID: string }> }>(`/api/v1/search?limit=1000&query=${encodeURIComponent(`to:"${address}"`)}`)
    const full = await Promise.all(messages.map((message) => get<ReceivedMessage>(`/api/v1/message/${message.ID}`)))
    return full.reverse()
  }
  return {
    smtpUrl,
    messagesTo,
    async waitForMessages (address, count = 1, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const messages = await messagesTo(address)
        if (messages.length >= count) return messages
        if (Date.now() > deadline) throw new Error(`${messages.length} of ${count} messages to ${address} arrived within ${timeoutMs} ms`)
        await sleep(50)
      }
    }
  }
}

async function waitForApi (apiUrl: string, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if ((await fetch(`${apiUrl}/api/v1/messages?limit=1`)).ok) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`Mailpit did not answer at ${apiUrl}`)
    await sleep(100)
  }
}

/**
 * Starts a Mailpit of its own (a fault test stops and starts it), on free
 * ports, keeping its messages in a database file across restarts.
 */
export async function startOwnMailServer (extraArguments: string[] = []): Promise<OwnMailServer> {
  const binary = mailpitBinary()
  if (binary === undefined || !existsSync(binary)) {
    throw new Error('No Mailpit binary: run `npm test` (its pretest builds one with Go), or set MAILPIT_BIN (go install github.com/axllent/mailpit@v1.33.1)')
  }
  const [smtpPort, httpPort] = [await freePort(), await freePort()]
  const database = `/tmp/mailpit-test-${process.pid}-${smtpPort}.db`
  const apiUrl = `http://127.0.0.1:${httpPort}`
  let child: ChildProcess | undefined
  async function start () {
    child = spawn(binary!, [
      '--smtp', `127.0.0.1:${smtpPort}`, '--listen', `127.0.0.1:${httpPort}`, '--database', database,
      '--smtp-auth-accept-any', '--smtp-auth-allow-insecure', '--max', '0', '--disable-version-check', '--quiet', ...extraArguments
    ], { stdio: 'ignore' })
    await waitForApi(apiUrl)
  }
  async function stop () {
    if (child === undefined || child.exitCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
  await start()
  const server: OwnMailServer = {
    ...client(apiUrl, `smtp://127.0.0.1:${smtpPort}`),
    start,
    stop,
    async refuseRecipients (probability) {
      const response = await fetch(`${apiUrl}/api/v1/chaos`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ Recipient: { ErrorCode: 451, Probability: probability } })
      })
      if (!response.ok) throw new Error(`Mailpit chaos: ${response.status}`)
    },
    async close () {
      await stop()
      for (const suffix of ['', '-wal', '-shm']) await import('node:fs/promises').then((fs) => fs.rm(`${database}${suffix}`, { force: true }))
    }
  }
  return server
}

let shared: Promise<MailServer> | undefined

/**
 * The mail server of a test file: the one `.ci/run` started (MAILPIT_SMTP_URL
 * and MAILPIT_API_URL), or one of this file's own. Tests tell their messages
 * apart by recipient (every test user has an address of its own).
 */
export function mailServer (): Promise<MailServer> {
  const smtpUrl = process.env.MAILPIT_SMTP_URL
  const apiUrl = process.env.MAILPIT_API_URL
  if (smtpUrl && apiUrl) return Promise.resolve(client(apiUrl, smtpUrl))
  shared ??= startOwnMailServer().then((server) => {
    tap.teardown(() => server.close())
    return server
  })
  return shared
}

/** The code in a message's text (shown as `ABCD-EFGH`). */
export function codeIn (message: ReceivedMessage): string {
  const code = /\b([2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4})\b/.exec(message.Text)?.[1]
  if (code === undefined) throw new Error(`no code in: ${message.Text}`)
  return code
}

/** The `token` of the link in a message's text. */
export function linkTokenIn (message: ReceivedMessage): string {
  const token = /[?&]token=([A-Za-z0-9_-]{43})\b/.exec(message.Text)?.[1]
  if (token === undefined) throw new Error(`no link token in: ${message.Text}`)
  return token
}
