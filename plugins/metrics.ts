import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** The auth events: each is one log line and one counter increment. Never a secret, never an email. */
export type AuthEvent =
  | { event: 'signup', outcome: 'success' | 'email_taken', userId?: string }
  | { event: 'login', outcome: 'success' | 'invalid_credentials' | 'rate_limited', userId?: string, sessionId?: string }
  | { event: 'refresh', outcome: 'rotated' | 'grace' | 'reuse_detected' | 'invalid' | 'session_expired', userId?: string, sessionId?: string }
  | { event: 'password_change', outcome: 'success' | 'invalid_current_password', userId: string, revokedSessions?: number }
  | { event: 'logout', outcome: 'success', sessionId: string }
  | { event: 'session_revoked', outcome: 'by_user', userId: string, sessionId?: string, revokedSessions?: number }

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry (one per app, so tests can build many). */
    metricsRegistry: Registry
    /** Logs an auth event on the request's logger and counts it. */
    recordAuthEvent: (request: FastifyRequest, event: AuthEvent) => void
  }
}

const COUNTER_NAMES: Record<AuthEvent['event'], string> = {
  signup: 'auth_signup_total',
  login: 'auth_login_total',
  refresh: 'auth_refresh_total',
  password_change: 'auth_password_change_total',
  logout: 'auth_logout_total',
  session_revoked: 'auth_session_revoked_total'
}

async function metricsPlugin (fastify: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  // Labelled by the route pattern (`/user/sessions/:id`), never the raw URL:
  // no token, email or id can become a label, and cardinality stays bounded.
  const requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route; its _count is the request count.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry]
  })

  const counters = Object.fromEntries(Object.entries(COUNTER_NAMES).map(([event, name]) => [event, new Counter({
    name,
    help: `Auth events: ${event.replace('_', ' ')}, by outcome.`,
    labelNames: ['outcome'] as const,
    registers: [registry]
  })])) as Record<AuthEvent['event'], Counter<'outcome'>>

  fastify.decorate('metricsRegistry', registry)

  fastify.decorate('recordAuthEvent', function recordAuthEvent (request: FastifyRequest, authEvent: AuthEvent) {
    counters[authEvent.event].inc({ outcome: authEvent.outcome })
    const message = `auth event: ${authEvent.event} ${authEvent.outcome}`
    if (authEvent.outcome === 'reuse_detected') request.log.warn(authEvent, message)
    else request.log.info(authEvent, message)
  })

  // One labelled child per method, route and status, looked up by a string
  // key: prom-client would otherwise hash the label object on every request.
  const observers = new Map<string, ReturnType<typeof requestDuration.labels>>()
  fastify.addHook('onResponse', function observeRequest (request, reply, done) {
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${route} ${reply.statusCode}`
    let observer = observers.get(key)
    if (observer === undefined) {
      observer = requestDuration.labels(request.method, route, String(reply.statusCode))
      observers.set(key, observer)
    }
    observer.observe(reply.elapsedTime / 1000)
    done()
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
