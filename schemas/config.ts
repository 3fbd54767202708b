import { Type, type Static } from '@sinclair/typebox'

/**
 * Every environment variable the service reads, with its default and meaning.
 * `config.ts` converts and checks `process.env` against it; docs/configuration.md's
 * configuration table is generated from it (`npm run config:table`).
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([
    Type.Literal('development'),
    Type.Literal('test'),
    Type.Literal('production')
  ], { default: 'development', description: '`production` enforces a configured signing secret and a bcrypt cost of at least 10.' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address the HTTP server listens on.' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'Port the HTTP server listens on.' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info', description: 'pino log level.' }
  ),
  MONGODB_URL: Type.String({
    pattern: '^mongodb(\\+srv)?://',
    default: 'mongodb://127.0.0.1:27017/auth',
    description: 'MongoDB connection string; the database name is taken from its path (`auth` when the path names none).'
  }),
  MONGODB_SERVER_SELECTION_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    maximum: 60000,
    default: 5000,
    description: 'How long a database operation waits for a reachable server before failing with 503.'
  }),
  JWT_ALGORITHM: Type.Union([
    Type.Literal('EdDSA'),
    Type.Literal('ES256'),
    Type.Literal('RS256'),
    Type.Literal('HS256')
  ], { default: 'EdDSA', description: 'Access-token signature. The key-pair algorithms publish their public keys at /.well-known/jwks.json; HS256 uses the shared JWT_SECRET instead.' }),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({
    description: 'PEM of the active signing key (Ed25519, P-256 or RSA ≥ 2048 matching JWT_ALGORITHM; `\\n` escapes allowed). Required in production unless HS256; elsewhere an ephemeral key pair is generated. `npm run keys:generate` makes one.'
  })),
  JWT_PRIVATE_KEY_FILE: Type.Optional(Type.String({ description: 'Path of a file holding JWT_PRIVATE_KEY instead.' })),
  JWT_VERIFY_KEYS: Type.Optional(Type.String({
    description: 'PEM blocks (public or private) of retired or upcoming keys that still verify tokens and are published in the JWKS, for rotation without logging anyone out.'
  })),
  JWT_VERIFY_KEYS_FILE: Type.Optional(Type.String({ description: 'Path of a file holding JWT_VERIFY_KEYS instead.' })),
  JWT_SECRET: Type.Optional(Type.String({
    description: 'HS256 only: the shared signing secret, at least 32 bytes. Required in production with HS256; elsewhere an ephemeral one is generated.'
  })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'auth-service', description: 'The `iss` claim of issued tokens, checked on verification.' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'auth-service-clients', description: 'The `aud` claim of issued tokens, checked on verification.' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86400, default: 900, description: 'Lifetime of an access token (`expiresIn`), in seconds.' }),
  JWT_VERIFY_CACHE_SIZE: Type.Integer({
    minimum: 0,
    maximum: 1000000,
    default: 10000,
    description: 'Verified access tokens remembered (LRU; an entry serves only the identical token, never past its exp), so a repeated token skips the signature check; about 1.4 KiB each with its profile response (10,000 ≈ 14 MiB; RS256 tokens ~1.7 KiB); 0 turns it off.'
  }),
  ALLOW_QUERY_TOKEN: Type.Boolean({ default: true, description: 'Accept the access token from the `secret_token` query parameter on GET routes (the Authorization header always works and wins).' }),
  SESSION_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 31536000, default: 2592000, description: 'Absolute lifetime of a session (and its refresh tokens), counted from login: 30 days by default.' }),
  REFRESH_GRACE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 10, description: 'How long after a rotation the previous refresh token still answers with the same successor (parallel tabs, retries); after it, reuse revokes the session.' }),
  EXPIRED_PURGE_INTERVAL_SECONDS: Type.Integer({ minimum: 1, maximum: 86400, default: 3600, description: 'Where the database refuses TTL indexes (FerretDB), how often expired sessions and tokens are deleted.' }),
  TRUST_PROXY: Type.String({
    default: 'false',
    description: 'Whether to believe X-Forwarded-For (client IP for rate limits and logs): `false`, `true` (any proxy), a hop count, or comma-separated proxy addresses/CIDRs. Leave `false` unless a proxy you control sets the header.'
  }),
  CORS_ORIGINS: Type.String({ default: '', description: 'Comma-separated origins allowed to call the API from a browser (e.g. `https://app.example.com`: scheme, host, optional port); empty (default) disables CORS. Anything else stops start-up.' }),
  RATE_LIMIT_WINDOW_SECONDS: Type.Integer({ minimum: 1, maximum: 86400, default: 60, description: 'Window of the per-IP limit on /signup, /login, /token/refresh, /user/password, /user/email and the /password and /email routes.' }),
  RATE_LIMIT_IP_MAX: Type.Integer({ minimum: 1, maximum: 1000000, default: 20, description: 'Requests per IP per window on each of those endpoints; more get 429 with Retry-After.' }),
  RATE_LIMIT_EMAIL_WINDOW_SECONDS: Type.Integer({ minimum: 1, maximum: 86400, default: 900, description: 'Window of the limits on failed attempts at an account\'s credentials (wrong passwords at /login and /user/password, wrong reset and verification codes) and on messages asked for an address.' }),
  RATE_LIMIT_EMAIL_MAX: Type.Integer({ minimum: 1, maximum: 1000000, default: 10, description: 'Failed attempts per account and client address (an IPv6 /64) per window; more get 429 from that address, while the owner elsewhere can still log in.' }),
  RATE_LIMIT_ACCOUNT_MAX: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000, description: 'Failed attempts per account per window from all addresses together (a distributed attack); 10 × RATE_LIMIT_EMAIL_MAX when unset.' })),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis for rate-limit counters shared by all replicas; unset keeps them in memory (one replica).' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, default: 'auth-service:rate-limit:', description: 'Prefix of the rate-limit keys in Redis.' }),
  SMTP_URL: Type.Optional(Type.String({
    pattern: '^smtps?://',
    description: 'SMTP server that delivers the service\'s email (verification, password reset, notices), e.g. `smtp://user:pass@mail.example.com:587`. Required in production; elsewhere, without it, messages (with their codes) are written to the log.'
  })),
  EMAIL_FROM: Type.String({ minLength: 3, default: 'Auth Service <no-reply@localhost>', description: 'The From of every message: an address, or `Name <address>`; its domain also names the Message-IDs.' }),
  EMAIL_PRODUCT_NAME: Type.String({ minLength: 1, default: 'Auth Service', description: 'The product named in messages (`{{product}}` in templates).' }),
  EMAIL_TEMPLATES_DIR: Type.Optional(Type.String({ description: 'A directory of templates replacing the built-in ones: `<kind>.txt` (first line `Subject: …`, then a blank line, then the body) and optionally `<kind>.html`, in Mustache syntax; see docs/email.md.' })),
  PASSWORD_RESET_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'A page of your app that takes `?token=…` and POSTs it to /password/reset with the new password; when set, reset messages carry a link to it beside the code.' })),
  EMAIL_VERIFY_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'A page of your app that takes `?token=…` and POSTs it to /email/verify; when set, verification messages carry a link to it beside the code.' })),
  REQUIRE_EMAIL_VERIFICATION: Type.Boolean({ default: false, description: 'When true, a correct login to an account whose email is not verified answers 403 EMAIL_NOT_VERIFIED and issues nothing.' }),
  PASSWORD_RESET_CODE_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 86400, default: 900, description: 'How long a password-reset code (and link) is valid.' }),
  EMAIL_VERIFICATION_CODE_TTL_SECONDS: Type.Integer({ minimum: 60, maximum: 604800, default: 86400, description: 'How long an email-verification code (and link) is valid.' }),
  EMAIL_REQUEST_MAX: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'Messages that /password/forgot and /email/verification queue per email address per RATE_LIMIT_EMAIL_WINDOW_SECONDS (known or not, so the limit tells nothing); more get 429.' }),
  EMAIL_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Delivery attempts of a message before it is marked dead (logged at error, counted in email_dead_total).' }),
  EMAIL_RETRY_BASE_SECONDS: Type.Number({ minimum: 0.01, maximum: 3600, default: 5, description: 'Back-off before a failed delivery is retried: this, doubled at each attempt (capped at one hour), with jitter.' }),
  EMAIL_CLAIM_TIMEOUT_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 120, description: 'How long a replica holds a message it is sending; a claim older than this (the replica died) is taken over, so nothing stays claimed forever.' }),
  EMAIL_POLL_INTERVAL_MS: Type.Integer({ minimum: 10, maximum: 600000, default: 1000, description: 'How often each replica looks for due messages (a replica also sends what it queued itself at once).' }),
  ADMIN_EMAILS: Type.String({ default: '', description: 'Comma-separated addresses whose accounts hold the role `admin` once the address is verified (the first admins; others get roles through PATCH /admin/users/:id).' }),
  SERVICE_CLIENTS: Type.Optional(Type.String({ description: 'Service clients declared by configuration, created or reset to this at every start (so compose or a secret store can give a service its credentials): a JSON array of `{ "id", "secret", "scopes": [...], "audience"?, "name"? }`; `id` is 3-64 of a-z, 0-9 and "-"; a `secret` has 16-256 characters, at least 32 in production. An admin may rotate or delete such a client; the next start restores its declaration.' })),
  CLIENT_SECRET_OVERLAP_SECONDS: Type.Integer({ minimum: 0, maximum: 2592000, default: 3600, description: 'After a service client\'s secret is rotated, how long the previous secret keeps working.' }),
  CLIENT_TOKEN_RATE_MAX: Type.Integer({ minimum: 1, maximum: 1000000, default: 60, description: 'Tokens a service client may get from POST /oauth/token per RATE_LIMIT_WINDOW_SECONDS; more get 429.' }),
  REVOCATION_SYNC_INTERVAL_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 500, description: 'How often each replica reads the revocation feed (and the list of service clients) into memory, for GET /auth/verify, GET /user/profile and the revocation stream: a revocation on any replica reaches them on every one within this time.' }),
  REVOCATION_STALENESS_BOUND_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30, description: 'How long a replica may go without reading the revocation feed before its own checks (GET /user/profile, GET /auth/verify, the feed\'s and stream\'s client check) refuse with 503 REVOCATION_STATE_STALE rather than accept a possibly revoked token.' }),
  REVOCATION_STREAMS_MAX: Type.Integer({ minimum: 1, maximum: 100000, default: 1000, description: 'Revocation streams (GET /revocations/stream) one replica serves at once; past it, 503 STREAMS_FULL.' }),
  REVOCATION_STREAMS_PER_CLIENT: Type.Integer({ minimum: 1, maximum: 10000, default: 20, description: 'Revocation streams one service client may hold open on one replica; past it, 429 TOO_MANY_STREAMS.' }),
  REVOCATION_STREAM_HEARTBEAT_SECONDS: Type.Integer({ minimum: 1, maximum: 300, default: 15, description: 'How often an idle revocation stream gets a heartbeat comment (sent only while the replica reads the feed). Keep it well under the consumers\' staleness bound (the library\'s default: 30 s).' }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 1000, description: 'Above this event-loop delay, requests get 503 (load shedding by @fastify/under-pressure); 0 disables.' }),
  BCRYPT_COST: Type.Integer({ minimum: 4, maximum: 16, default: 12, description: 'bcrypt cost factor for new hashes; hashes of a lower cost are upgraded at the next login.' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 1048576, default: 16384, description: 'Largest request body accepted; larger ones get 413.' }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, maximum: 120000, default: 10000, description: 'On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway.' })
})

export type Env = Static<typeof EnvSchema>
