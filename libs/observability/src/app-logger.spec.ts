import { scrubSecrets } from './app-logger.service';
import { createCapturingLogger } from './capturing-logger';
import { RequestContext } from './request-context';

const capture = () => createCapturingLogger('debug');

describe('AppLogger', () => {
  it('puts the request id of the current request on every line', () => {
    const { logger, lines } = capture();
    RequestContext.run({ requestId: 'req-1' }, () => logger.info({ a: 1 }, 'hello'));
    logger.info('outside');
    expect(lines()[0]).toMatchObject({ requestId: 'req-1', msg: 'hello', a: 1, level: 'info' });
    expect(lines()[1].requestId).toBeUndefined();
  });

  it('redacts authorization headers and token fields', () => {
    const { logger, lines } = capture();
    logger.info(
      { headers: { authorization: 'Bearer abc.def.ghi' }, token: 'x', nested: { password: 'p' } },
      'req',
    );
    const line = JSON.stringify(lines()[0]);
    expect(line).not.toMatch(/abc\.def|"x"|"p"/);
    expect(line).toMatch(/REDACTED/);
  });

  it('scrubs secrets inside free text and error messages', () => {
    const { logger, lines } = capture();
    const pat = 'b'.repeat(40);
    logger.error(
      { err: new Error(`upstream said no to ${pat}`) },
      `Authorization: Basic dXNlcjpwYXNzd29yZA== failed with ${pat}`,
    );
    const line = JSON.stringify(lines()[0]);
    expect(line).not.toContain(pat);
    expect(line).not.toContain('dXNlcjpwYXNzd29yZA');
  });

  it('scrubs Gatehouse access keys and JWTs', () => {
    expect(scrubSecrets('key ghk_abcdefghijklmnopqrstuvwxyz012345 jwt eyJhbGciOi.eyJzdWIiOi.sig')).toBe(
      'key [REDACTED] jwt [REDACTED]',
    );
  });
});
