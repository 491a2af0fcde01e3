import { Injectable, LoggerService } from '@nestjs/common';
import pino, { DestinationStream, Logger as PinoLogger, LoggerOptions } from 'pino';
import { RequestContext } from './request-context';

/**
 * Paths redacted from every log line. Secrets must never reach a log even when someone logs a
 * whole request or error object.
 */
export const REDACT_PATHS = [
  'authorization',
  'password',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'secret',
  'key',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  '*.authorization',
  '*.password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.secret',
];

/** Bearer/Basic credentials, Gatehouse keys and 40-hex Forgejo tokens inside free text. */
const SECRET_PATTERNS: RegExp[] = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /\bghk_[A-Za-z0-9_-]{20,}/g,
  /\b[a-f0-9]{40}\b/g,
  /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g,
];

export function scrubSecrets(text: string): string {
  let out = text;
  for (const p of SECRET_PATTERNS)
    out = out.replace(p, (m) =>
      /^(Bearer|Basic)\s/i.test(m) ? `${m.split(/\s/)[0]} [REDACTED]` : '[REDACTED]',
    );
  return out;
}

export function createPinoLogger(level = 'info', destination?: DestinationStream): PinoLogger {
  const options: LoggerOptions = {
    level,
    base: { service: 'gatehouse' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = RequestContext.current();
      if (!ctx) return {};
      return ctx.clientRequestId === undefined
        ? { requestId: ctx.requestId }
        : { requestId: ctx.requestId, clientRequestId: ctx.clientRequestId };
    },
    hooks: {
      // Free-text messages may quote an upstream answer or a header: scrub them too.
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as Parameters<
          typeof method
        >;
        method.apply(this, scrubbed);
      },
    },
    serializers: {
      err: (e: unknown) => {
        const s = pino.stdSerializers.err(e as Error);
        if (s && typeof s.message === 'string') s.message = scrubSecrets(s.message);
        if (s && typeof s.stack === 'string') s.stack = scrubSecrets(s.stack);
        return s;
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * The application logger: structured JSON lines (pino) with the request id of the current
 * request on every line. Also serves as Nest's LoggerService.
 */
@Injectable()
export class AppLogger implements LoggerService {
  constructor(readonly pino: PinoLogger) {}

  child(bindings: Record<string, unknown>): AppLogger {
    return new AppLogger(this.pino.child(bindings));
  }

  info(obj: object | string, msg?: string): void {
    this.write('info', obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.write('warn', obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.write('error', obj, msg);
  }
  debug(obj: object | string, msg?: string): void {
    this.write('debug', obj, msg);
  }

  // LoggerService (Nest's own messages: (message, context) or (message, trace, context)).
  // Nest's "log" level is module and route bookkeeping at start: debug, not operator news.
  log(message: unknown, ...rest: unknown[]): void {
    this.nest('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.nest('debug', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.nest('fatal', message, rest);
  }

  private write(level: 'info' | 'warn' | 'error' | 'debug', obj: object | string, msg?: string): void {
    if (typeof obj === 'string') this.pino[level](obj);
    else this.pino[level](obj, msg);
  }

  private nest(level: 'info' | 'debug' | 'fatal', message: unknown, rest: unknown[]): void {
    const context =
      rest.length > 0 && typeof rest[rest.length - 1] === 'string'
        ? (rest[rest.length - 1] as string)
        : undefined;
    if (message instanceof Error) this.pino[level]({ err: message, context }, message.message);
    else if (typeof message === 'object' && message !== null) this.pino[level]({ ...message, context });
    else this.pino[level]({ context }, String(message));
  }
}
