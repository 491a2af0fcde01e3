import { AsyncLocalStorage } from 'node:async_hooks';

/** Per-request facts every log line and audit row needs, carried without threading parameters. */
export interface RequestContextData {
  /** Minted by the gateway for every request: unique, whatever the client sent. */
  requestId: string;
  /**
   * The client's (or its proxy's) `X-Request-Id`, when it sent a safe one: kept for correlation
   * in its own field, never used as our id (two requests may carry the same value).
   */
  clientRequestId?: string;
  /**
   * A mirror Gatehouse's `X-Gatehouse-Member-Tag`, when safe: offered with the request, and
   * recorded (`clientMemberTag`) only once the request's credentials are accepted.
   */
  offeredMemberTag?: string;
  clientMemberTag?: string;
  clientIp?: string;
  userAgent?: string;
  /** Set once the request is authenticated. */
  memberId?: string;
  username?: string;
}

const storage = new AsyncLocalStorage<RequestContextData>();

export const RequestContext = {
  run<T>(data: RequestContextData, fn: () => T): T {
    return storage.run(data, fn);
  },
  current(): RequestContextData | undefined {
    return storage.getStore();
  },
  /**
   * The request's credentials were accepted for this member: a member tag the request offered
   * is trusted from now on (audited as `client_member_tag`); an anonymous or refused request
   * never records one.
   */
  authenticated(member: { memberId: string; username: string }): void {
    const store = storage.getStore();
    if (!store) return;
    Object.assign(store, member);
    if (store.offeredMemberTag) store.clientMemberTag = store.offeredMemberTag;
  },
  /** Adds facts learnt during the request (e.g. the member after authentication). */
  patch(values: Partial<RequestContextData>): void {
    const store = storage.getStore();
    if (store) Object.assign(store, values);
  },
};
