import { DataSource } from 'typeorm';
import { AccessKeyService, MemberService } from '@gatehouse/members';
import { ManualClock } from '@gatehouse/observability';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { PortalSessionStore } from './portal-session.store';

const MINUTE = 60_000;

describe('portal sessions: the console lifetimes, and the key and member checked on each request', () => {
  let gw: TestGateway;
  let clock: ManualClock;
  let sessions: PortalSessionStore;

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    gw = await createTestGateway({
      clock,
      env: { CONSOLE_SESSION_IDLE_MINUTES: '30', CONSOLE_SESSION_MAX_HOURS: '2' },
    });
    sessions = gw.app.get(PortalSessionStore);
  });
  afterAll(() => gw?.close());

  async function member(name: string): Promise<{ username: string; key: string; keyId: string }> {
    await gw.app.get(MemberService).create(name);
    const { key, accessKey } = await gw.app.get(AccessKeyService).create(name);
    return { username: name, key, keyId: accessKey.id };
  }

  async function signIn(who: { username: string; key: string }): Promise<string> {
    const res = await fetch(`${gw.url}/portal/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ username: who.username, key: who.key }).toString(),
    });
    expect(res.status).toBe(303);
    return res.headers.get('set-cookie')!.split(';')[0];
  }

  /** Where the overview sends this cookie: 200 while signed in, the sign-in page after. */
  async function overview(cookie: string): Promise<string> {
    const res = await fetch(`${gw.url}/portal/overview`, { redirect: 'manual', headers: { cookie } });
    await res.arrayBuffer();
    return res.status === 200 ? 'signed in' : `${res.status} ${res.headers.get('location')}`;
  }

  it('keeps a session alive while it is used, ends it after 30 idle minutes and at its absolute expiry', async () => {
    const who = await member('sess-idle');
    const { id } = await gw.app.get(MemberService).get(who.username);
    const idle = await sessions.create(id, who.keyId);
    clock.advance(29 * MINUTE);
    await expect(sessions.touch(idle)).resolves.toMatchObject({ memberId: id, accessKeyId: who.keyId });
    clock.advance(31 * MINUTE);
    await expect(sessions.touch(idle)).resolves.toBeNull();

    const busy = await sessions.create(id, who.keyId);
    for (let i = 0; i < 7; i++) {
      clock.advance(15 * MINUTE);
      await expect(sessions.touch(busy)).resolves.not.toBeNull();
    }
    clock.advance(16 * MINUTE);
    await expect(sessions.touch(busy)).resolves.toBeNull();
  });

  it('stores only a hash of the cookie', async () => {
    const cookie = await signIn(await member('sess-hash'));
    const secret = cookie.split('=')[1];
    const rows: Array<{ id_hash: string }> = await gw.app
      .get(DataSource)
      .query('SELECT id_hash FROM portal_sessions');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.id_hash.includes(secret))).toBe(false);
  });

  it('ends the session when its key is revoked', async () => {
    const who = await member('sess-revoked');
    const cookie = await signIn(who);
    expect(await overview(cookie)).toBe('signed in');
    await gw.app.get(AccessKeyService).revoke(who.keyId);
    expect(await overview(cookie)).toBe('303 /portal/login');
    // The row is gone: a key made afterwards does not bring the old cookie back.
    await gw.app.get(AccessKeyService).create(who.username);
    expect(await overview(cookie)).toBe('303 /portal/login');
  });

  it('ends the session when the member is disabled, and it stays ended after re-enabling', async () => {
    const who = await member('sess-disabled');
    const cookie = await signIn(who);
    expect(await overview(cookie)).toBe('signed in');
    await gw.app.get(MemberService).disable(who.username);
    expect(await overview(cookie)).toBe('303 /portal/login');
    await gw.app.get(MemberService).enable(who.username);
    expect(await overview(cookie)).toBe('303 /portal/login');
  });

  it('ends the session when its key expires', async () => {
    await gw.app.get(MemberService).create('sess-expiry');
    const { key } = await gw.app
      .get(AccessKeyService)
      .create('sess-expiry', { expiresAt: new Date(clock.now() + 10 * MINUTE) });
    const cookie = await signIn({ username: 'sess-expiry', key });
    expect(await overview(cookie)).toBe('signed in');
    clock.advance(11 * MINUTE);
    expect(await overview(cookie)).toBe('303 /portal/login');
  });
});
