import { ConfigValidationError, loadGatewayConfig } from './gateway-config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadGatewayConfig(env);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.problems;
    throw e;
  }
  return [];
}

describe('EXPIRY_WARNING_DAYS', () => {
  it('is 14 days unless set, and 0 turns the warnings off', () => {
    expect(loadGatewayConfig({}).auth.expiryWarningDays).toBe(14);
    expect(loadGatewayConfig({ EXPIRY_WARNING_DAYS: '0' }).auth.expiryWarningDays).toBe(0);
    expect(loadGatewayConfig({ EXPIRY_WARNING_DAYS: '30' }).auth.expiryWarningDays).toBe(30);
  });

  it('refuses what is not a whole number of days from 0 to 365', () => {
    for (const bad of ['-1', '366', '2w', '1.5'])
      expect(problemsOf({ EXPIRY_WARNING_DAYS: bad })).toEqual([
        expect.stringMatching(/^EXPIRY_WARNING_DAYS must be/),
      ]);
  });
});
