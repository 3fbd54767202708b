import fp from 'fastify-plugin'
import { Counter, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** The auth events: each is one log line and one counter increment. Never a secret, never an email. */
export type AuthEvent =
  | { event: 'signup', outcome: 'success' | 'email_taken', userId?: string }
  | { event: 'login', outcome: 'success' | 'invalid_credentials' | 'rate_limited' | 'email_not_verified' | 'account_disabled', userId?: string, sessionId?: string }
  | { event: 'refresh', outcome: 'rotated' | 'grace' | 'reuse_detected' | 'invalid' | 'session_expired', userId?: string, sessionId?: string }
  | { event: 'password_change', outcome: 'success' | 'invalid_current_password' | 'rate_limited', userId: string, revokedSessions?: number }
  | { event: 'logout', outcome: 'success', sessionId: string }
  | { event: 'session_revoked', outcome: 'by_user', userId: string, sessionId?: string, revokedSessions?: number }
  | { event: 'password_reset_request', outcome: 'queued' | 'unknown_email' | 'rate_limited', userId?: string }
  | { event: 'password_reset', outcome: 'success' | 'invalid_code' | 'rate_limited', userId?: string, revokedSessions?: number }
  | { event: 'email_verification_request', outcome: 'queued' | 'not_queued' | 'rate_limited', userId?: string }
  | { event: 'email_verification', outcome: 'success' | 'email_changed' | 'invalid_code' | 'rate_limited', userId?: string }
  | { event: 'email_change_request', outcome: 'queued' | 'invalid_current_password' | 'email_taken' | 'rate_limited', userId: string }
  | { event: 'account_deletion', outcome: 'success' | 'invalid_current_password' | 'rate_limited', userId: string, revokedSessions?: number }
  | { event: 'admin', outcome: 'user_updated' | 'user_disabled' | 'user_enabled' | 'user_deleted' | 'sessions_revoked', actorId: string, userId: string, roles?: string[], revokedSessions?: number }
  | { event: 'admin', outcome: 'client_created' | 'client_secret_rotated' | 'client_deleted', actorId: string, clientId: string, scopes?: string[] }
  | { event: 'client_token', outcome: 'issued' | 'invalid_client' | 'invalid_scope' | 'invalid_request' | 'unsupported_grant_type', clientId?: string }

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
  session_revoked: 'auth_session_revoked_total',
  password_reset_request: 'auth_password_reset_request_total',
  password_reset: 'auth_password_reset_total',
  email_verification_request: 'auth_email_verification_request_total',
  email_verification: 'auth_email_verification_total',
  email_change_request: 'auth_email_change_request_total',
  account_deletion: 'auth_account_deletion_total',
  admin: 'auth_admin_action_total',
  client_token: 'auth_client_token_total'
}

type LatencyLabels = { method: string, route: string, status_code: string }

/** One series of the latency histogram: a count per bucket (not cumulative), the count and the sum. */
class LatencySeries {
  readonly bucketCounts: Float64Array
  count = 0
  sum = 0

  constructor (readonly labels: LatencyLabels, private readonly bounds: readonly number[]) {
    this.bucketCounts = new Float64Array(bounds.length)
  }

  observe (seconds: number) {
    this.count++
    this.sum += seconds
    for (let i = 0; i < this.bounds.length; i++) {
      if (seconds <= this.bounds[i]!) {
        this.bucketCounts[i]!++
        return
      }
    }
  }
}

/**
 * The request-latency histogram. prom-client's Histogram hashes the label
 * object and turns the bucket's bound into a property name on every
 * observe(), a visible share of the profile route's CPU. Here a
 * series adds into an array, and the histogram hands prom-client's registry
 * the same values a prom-client Histogram would (its `get()`), so /metrics
 * stays one exposition, tested in metrics.test.ts.
 */
class LatencyHistogram {
  readonly type = 'histogram'
  private readonly allSeries: LatencySeries[] = []

  constructor (readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  series (labels: LatencyLabels): LatencySeries {
    const series = new LatencySeries(labels, this.bounds)
    this.allSeries.push(series)
    return series
  }

  async get () {
    const values: Array<{ metricName: string, labels: Record<string, string | number>, value: number }> = []
    for (const { labels, bucketCounts, count, sum } of this.allSeries) {
      let cumulative = 0
      this.bounds.forEach((le, i) => {
        cumulative += bucketCounts[i]!
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative })
      })
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: count })
      values.push({ metricName: `${this.name}_sum`, labels, value: sum })
      values.push({ metricName: `${this.name}_count`, labels, value: count })
    }
    return { name: this.name, help: this.help, type: this.type, values }
  }
}

async function metricsPlugin (fastify: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  // Labelled by the route pattern (`/user/sessions/:id`), never the raw URL:
  // no token, email or id can become a label, and cardinality stays bounded.
  const requestDuration = new LatencyHistogram(
    'http_request_duration_seconds',
    'HTTP request latency by route; its _count is the request count.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
  )
  // The registry reads a metric through get() only (this service never resets
  // metrics); its parameter type lists prom-client's four metric classes.
  registry.registerMetric(requestDuration as unknown as Metric)

  const counters = Object.fromEntries(Object.entries(COUNTER_NAMES).map(([event, name]) => [event, new Counter({
    name,
    help: `Auth events: ${event.replaceAll('_', ' ')}, by outcome.`,
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

  // One series per route, method and status, found through nested maps: a
  // key string built per request had to be hashed and compared in full each
  // time. The route pattern and the method are the same string objects on
  // every request, so their hashes are cached.
  const seriesByRoute = new Map<string, Map<string, Map<number, LatencySeries>>>()
  function seriesFor (route: string, method: string, statusCode: number): LatencySeries {
    let byMethod = seriesByRoute.get(route)
    if (byMethod === undefined) seriesByRoute.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let series = byStatus.get(statusCode)
    if (series === undefined) byStatus.set(statusCode, series = requestDuration.series({ method, route, status_code: String(statusCode) }))
    return series
  }
  fastify.addHook('onResponse', function observeRequest (request, reply, done) {
    seriesFor(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode).observe(reply.elapsedTime / 1000)
    done()
  })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
