import nodemailer from 'nodemailer'
import type { FastifyBaseLogger } from 'fastify'

export interface OutgoingMail {
  /** Stable per message (every attempt sends the same), so a receiver can tell a re-sent message. */
  messageId: string
  to: string
  subject: string
  text: string
  html?: string
}

export interface MailTransport {
  send: (mail: OutgoingMail) => Promise<void>
  close: () => void
}

/**
 * SMTP through nodemailer, with timeouts short enough that a dead server
 * fails an attempt (to be retried) well within a claim's lifetime; nodemailer's
 * own defaults wait minutes.
 */
export function smtpTransport (url: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport({
    url,
    pool: true,
    maxConnections: 4,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000
  }, { from })
  return {
    async send (mail) {
      await transporter.sendMail({ ...mail, messageId: mail.messageId })
    },
    close () { transporter.close() }
  }
}

/**
 * Local development without an SMTP server: each message, code included, is
 * written to the log. Never in production (the configuration refuses it).
 */
export function logTransport (log: FastifyBaseLogger): MailTransport {
  log.warn('SMTP_URL is not set: email messages, with their codes, are written to this log instead of being sent (never do this in production)')
  return {
    async send (mail) {
      log.info({ email: { messageId: mail.messageId, to: mail.to, subject: mail.subject, text: mail.text } }, 'email message (not sent: no SMTP_URL)')
    },
    close () {}
  }
}
