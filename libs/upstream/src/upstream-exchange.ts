import { IncomingHttpHeaders } from 'node:http';
import type { UpstreamConfig } from '@gatehouse/config';
import { isValidRepositoryName, OciError } from '@gatehouse/oci';
import { Dispatcher } from 'undici';
import { UpstreamTarget } from './upstream-failure.classifier';

/** The internal shapes one upstream request passes through (not exported from the lib). */

export interface RequestSpec {
  method: 'GET' | 'HEAD';
  /** Path and query under FORGEJO_BASE_URL, e.g. `/v2/acme/app/tags/list?n=10`. */
  path: string;
  repository?: string;
  /** Token scope when no repository applies (catalog). */
  scope?: string;
  accept?: string;
  range?: string;
  signal?: AbortSignal;
  followRedirects?: boolean;
  /** No credentials at all (the ping that discovers the challenge). */
  anonymous?: boolean;
  /** Classify but do not log or count (an optional probe). */
  quiet?: boolean;
}

/** A GET of a JSON document (the releases and packages APIs, a Gatehouse's listings). */
export function jsonGet(path: string, options: { signal?: AbortSignal; quiet?: boolean }): RequestSpec {
  return { method: 'GET', path, accept: 'application/json', signal: options.signal, quiet: options.quiet };
}

export interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  url: URL;
  target: UpstreamTarget;
  sentAuth: 'bearer' | 'basic' | 'none';
}

export interface Authorization {
  header?: string;
  kind: 'bearer' | 'basic' | 'none';
  fromCache: boolean;
  tokenKey?: string;
}

/** A network failure annotated with the hop it happened on (registry, realm or storage). */
export class HopError extends Error {
  constructor(
    readonly original: unknown,
    readonly target: UpstreamTarget,
    readonly url: URL,
  ) {
    super('upstream hop failed', { cause: original });
  }
}

export const USER_AGENT = 'gatehouse-upstream';

export function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const v = first(headers['content-length']);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

/** Origin and path, never the query (presigned storage URLs carry signatures there). */
export function safeLocation(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** `GET /v2/acme/app/tags/list` for a spec, never the query. */
export function requestLine(spec: { method: string; path: string }): string {
  return `${spec.method} ${spec.path.split('?')[0]}`;
}

export function basicCredentials(config: UpstreamConfig): string {
  return `Basic ${Buffer.from(`${config.username}:${config.token}`).toString('base64')}`;
}

export function assertName(name: string): void {
  if (!isValidRepositoryName(name)) throw new OciError('NAME_INVALID', { reason: 'name_invalid' });
}

/** The abort reason when one request's overall deadline passes (a trickling upstream). */
export class UpstreamDeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`the upstream request did not finish within ${ms} ms`);
    this.name = 'UpstreamDeadlineError';
  }
}

export interface Deadline {
  /** Aborts at the deadline (reason: UpstreamDeadlineError) or when the caller's signal does. */
  readonly signal: AbortSignal;
  readonly expired: boolean;
  clear(): void;
}

/** An overall deadline for one request, on top of the caller's own signal. */
export function startDeadline(ms: number, callerSignal: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new UpstreamDeadlineError(ms)), ms);
  timer.unref();
  const signal = callerSignal ? AbortSignal.any([controller.signal, callerSignal]) : controller.signal;
  return {
    signal,
    get expired() {
      return controller.signal.aborted;
    },
    clear: () => clearTimeout(timer),
  };
}
