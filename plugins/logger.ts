import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { destination, type DestinationStream } from 'pino'

const REDACTED = '[REDACTED]'

const SECRET_PARAM = 'secret_token'

/**
 * Replaces the value of every `secret_token` query parameter, however its name
 * is percent-encoded, and everything after a `#` (refused, but still logged),
 * so the access token never reaches a log line.
 */
export function redactUrl (target: string): string {
  const fragmentStart = target.indexOf('#')
  const url = fragmentStart === -1 ? target : target.slice(0, fragmentStart)
  const fragment = fragmentStart === -1 ? '' : `#${REDACTED}`
  return redactQuery(url) + fragment
}

function redactQuery (url: string): string {
  const queryStart = url.indexOf('?')
  if (queryStart === -1) return url
  if (url.indexOf('%', queryStart) === -1 && url.indexOf('+', queryStart) === -1) return redactPlainQuery(url, queryStart)
  return redactEncodedQuery(url, queryStart)
}

/**
 * redactUrl for a query with nothing encoded, where a parameter is
 * `secret_token` only as written: found with indexOf, without splitting the
 * query into an array and decoding every name. A property test holds it to
 * redactEncodedQuery's result.
 */
export function redactPlainQuery (url: string, queryStart: number): string {
  let redacted = ''
  let copiedUpTo = 0
  for (let start = queryStart + 1; start <= url.length;) {
    let end = url.indexOf('&', start)
    if (end === -1) end = url.length
    const nameEnd = start + SECRET_PARAM.length
    if (url.startsWith(SECRET_PARAM, start) && (nameEnd === end || url.charCodeAt(nameEnd) === 61 /* = */)) {
      redacted += `${url.slice(copiedUpTo, start)}${SECRET_PARAM}=${REDACTED}`
      copiedUpTo = end
    }
    start = end + 1
  }
  return copiedUpTo === 0 ? url : redacted + url.slice(copiedUpTo)
}

/** redactUrl for any query: each name decoded as Fastify's parser decodes it. */
export function redactEncodedQuery (url: string, queryStart: number): string {
  const params = url.slice(queryStart + 1).split('&').map((param) => {
    const separator = param.indexOf('=')
    const rawName = separator === -1 ? param : param.slice(0, separator)
    let name = rawName
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '))
    } catch {
      // An undecodable name cannot be `secret_token` as Fastify parses it either.
    }
    return name === SECRET_PARAM ? `${rawName}=${REDACTED}` : param
  })
  return `${url.slice(0, queryStart)}?${params.join('&')}`
}

/**
 * A file descriptor (standard output for the service) through sonic-boom,
 * pino's own destination, flushed on exit, fed each line as a Buffer. Fed
 * strings, sonic-boom measures the UTF-8 length of its whole pending chunk (up
 * to 16 KiB) again on every line; fed Buffers, it adds lengths. pino calls
 * flushSync after a fatal line.
 */
export function logDestination (fd: number): DestinationStream {
  const sonic = destination({ dest: fd, sync: false, contentMode: 'buffer' })
  // sonic-boom's types know only its default, string mode.
  const writeBuffer = sonic.write.bind(sonic) as unknown as (chunk: Buffer) => boolean
  return {
    write: (line: string) => writeBuffer(Buffer.from(line)),
    flush: (callback?: (error?: Error) => void) => sonic.flush(callback),
    flushSync: () => sonic.flushSync()
  } as DestinationStream
}

export function loggerOptions (level: string, stream?: DestinationStream): FastifyServerOptions['logger'] {
  return {
    level,
    stream: stream ?? logDestination(1),
    // Defence in depth: nothing logs headers today, but a future debug line
    // must not leak them. `req` needs no paths: its serializer below keeps
    // four fields and never headers or the query, and a `req.*` path would
    // make pino clone and restore the request on every line.
    redact: {
      paths: ['headers.authorization', 'headers.cookie'],
      censor: REDACTED
    },
    serializers: {
      req (request: FastifyRequest) {
        return {
          method: request.method,
          url: redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip
        }
      }
    }
  }
}

/**
 * One log line per request, when it completes, with the request (URL
 * redacted by the serializer above), the status and the time taken. Fastify's
 * default writes a second line on arrival, which tells nothing the completion
 * line lacks and, at `info`, costs a measurable share of throughput. Every
 * other line Fastify writes (errors, stream and serializer failures, shutdown
 * refusals) is kept.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
