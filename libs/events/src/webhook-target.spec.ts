import { checkWebhookTarget, isPrivateAddress, WebhookTargetError } from './webhook-target';

describe('webhook targets', () => {
  it.each([
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    'not-an-ip',
  ])('%s is private', (a) => expect(isPrivateAddress(a)).toBe(true));

  it.each(['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '::ffff:93.184.216.34'])(
    '%s is public',
    (a) => expect(isPrivateAddress(a)).toBe(false),
  );

  const lookup = (answers: Record<string, string[]>) => async (host: string) =>
    (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('refuses a name that resolves to a private address, and says how to allow it', async () => {
    const l = lookup({ 'hooks.example.com': ['93.184.216.34', '10.0.0.8'] });
    await expect(checkWebhookTarget('https://hooks.example.com/x', false, l)).rejects.toThrow(
      /private.*10\.0\.0\.8.*EVENTS_ALLOW_PRIVATE_TARGETS=true/,
    );
    await expect(checkWebhookTarget('https://hooks.example.com/x', true, l)).resolves.toBeInstanceOf(URL);
  });

  it.each([
    ['ftp://hooks.example.com/', /http/],
    ['https://user:pw@hooks.example.com/', /credentials/],
    ['https://hooks.example.com/#frag', /fragment/],
    ['not a url', /not a URL/],
    ['http://[::ffff:7f00:1]/', /private/],
    ['http://2130706433/', /private/],
  ])('refuses %s', async (url, message) => {
    const err = await checkWebhookTarget(url, false, lookup({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookTargetError);
    expect((err as Error).message).toMatch(message);
  });

  it('accepts a public https URL', async () => {
    const url = await checkWebhookTarget(
      'https://hooks.example.com/in',
      false,
      lookup({ 'hooks.example.com': ['93.184.216.34'] }),
    );
    expect(url.toString()).toBe('https://hooks.example.com/in');
  });
});
