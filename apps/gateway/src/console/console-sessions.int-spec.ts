import { DataSource } from 'typeorm';
import { ManualClock } from '@gatehouse/observability';
import { createTestGateway, TestGateway } from '@gatehouse/testing/gateway';
import { ConsoleSessionStore } from './console-session.store';

const staff = { issuer: 'https://idp.example', subject: 'u-1', name: 'Sam', role: 'support' as const };
const MINUTE = 60_000;

describe('console sessions in PostgreSQL', () => {
  let gw: TestGateway;
  let clock: ManualClock;
  let sessions: ConsoleSessionStore;

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    gw = await createTestGateway({
      clock,
      env: { CONSOLE_SESSION_IDLE_MINUTES: '30', CONSOLE_SESSION_MAX_HOURS: '2' },
    });
    sessions = gw.app.get(ConsoleSessionStore);
  });
  afterAll(() => gw?.close());

  it('keeps a session alive while it is used, and ends it after 30 idle minutes', async () => {
    const id = await sessions.create(staff);
    clock.advance(29 * MINUTE);
    await expect(sessions.touch(id)).resolves.toMatchObject({ ...staff, csrfToken: expect.any(String) });
    clock.advance(29 * MINUTE);
    await expect(sessions.touch(id)).resolves.not.toBeNull();
    clock.advance(31 * MINUTE);
    await expect(sessions.touch(id)).resolves.toBeNull();
  });

  it('ends a busy session at its absolute expiry', async () => {
    const id = await sessions.create(staff);
    for (let i = 0; i < 7; i++) {
      clock.advance(15 * MINUTE);
      await expect(sessions.touch(id)).resolves.not.toBeNull();
    }
    clock.advance(16 * MINUTE);
    await expect(sessions.touch(id)).resolves.toBeNull();
  });

  it('stores only a hash of the cookie, and forgets the session at logout', async () => {
    const id = await sessions.create(staff);
    const rows: Array<{ id_hash: string }> = await gw.app
      .get(DataSource)
      .query('SELECT id_hash FROM console_sessions');
    expect(rows.some((r) => r.id_hash === id)).toBe(false);
    await sessions.destroy(id);
    await expect(sessions.touch(id)).resolves.toBeNull();
    await expect(sessions.touch('not-a-session')).resolves.toBeNull();
  });

  it('hands a pending sign-in out once, and not after 15 minutes', async () => {
    const login = { state: 's', nonce: 'n', codeVerifier: 'v' };
    const once = await sessions.beginLogin(login);
    await expect(sessions.takeLogin(once)).resolves.toEqual(login);
    await expect(sessions.takeLogin(once)).resolves.toBeNull();
    const late = await sessions.beginLogin(login);
    clock.advance(16 * MINUTE);
    await expect(sessions.takeLogin(late)).resolves.toBeNull();
  });
});
