import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import fastifyCors from '@fastify/cors'
import fastifyUnderPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import { FragmentInRequestTargetError } from '../errors.js'

export interface HttpHardeningOptions {
  corsOrigins: string[]
  maxEventLoopDelayMs: number
}

/**
 * The security headers of a JSON API (OWASP's REST Security Cheat Sheet),
 * built by helmet once at start-up. helmet's defaults are made for HTML
 * documents; on JSON responses most of them (COOP, Origin-Agent-Cluster,
 * X-DNS-Prefetch-Control, X-Download-Options, X-Permitted-Cross-Domain-Policies,
 * X-XSS-Protection) do nothing, yet Node checks and writes every header on
 * every response. The policy here is
 * stricter where it matters: nothing may load or frame a JSON response, and
 * `Cache-Control: no-store` keeps tokens and profiles out of every cache
 * (RFC 6749 §5.1); the routes meant to be cached (JWKS, revocations) set their
 * own, and the docs UI its own Content-Security-Policy (swagger-ui staticCSP).
 */
function apiSecurityHeaders (): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: string | number | string[]) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { Reflect.deleteProperty(headers, name.toLowerCase()) }
  }
  helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  })({} as IncomingMessage, response as unknown as ServerResponse, () => undefined)
  return { ...headers, 'cache-control': 'no-store' }
}

/**
 * Security headers (above), CORS for the configured origins only
 * (@fastify/cors; none by default, so browsers on other origins get no access),
 * and load shedding (@fastify/under-pressure): while the event loop lags more
 * than the limit, requests get a 503 instead of queueing until every one times out.
 */
async function httpHardeningPlugin (fastify: FastifyInstance, options: HttpHardeningOptions) {
  const securityHeaders = apiSecurityHeaders()
  fastify.addHook('onRequest', function addSecurityHeaders (request, reply, done) {
    reply.headers(securityHeaders)
    // Clients never send a fragment; the router would cut the path at `#` and
    // read what follows as a query, so a token there would open the route.
    done(request.url.includes('#') ? new FragmentInRequestTargetError() : undefined)
  })
  if (options.corsOrigins.length > 0) {
    await fastify.register(fastifyCors, { origin: options.corsOrigins, methods: ['GET', 'POST', 'PUT', 'DELETE'], maxAge: 600 })
  }
  if (options.maxEventLoopDelayMs > 0) {
    await fastify.register(fastifyUnderPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      retryAfter: 10
    })
  }
}

export default fp(httpHardeningPlugin, { name: 'http-hardening', fastify: '5.x' })
