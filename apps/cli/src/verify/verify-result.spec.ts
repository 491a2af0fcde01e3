import { lastErrorLine } from './real-client.check';
import {
  fail,
  formatBytes,
  hasFailure,
  pass,
  redact,
  shortDigest,
  skip,
  summarize,
  warn,
} from './verify-result';
import { basicValue } from './verify-session';

describe('verify-oci results', () => {
  it('fails the run on a FAIL only; WARN and SKIP do not', () => {
    expect(hasFailure([pass('a', ''), warn('b', ''), skip('c', '')])).toBe(false);
    expect(hasFailure([pass('a', ''), fail('b', '')])).toBe(true);
    expect(summarize([pass('a', ''), pass('b', ''), fail('c', ''), skip('d', '')])).toBe(
      '4 checks: 2 PASS, 1 FAIL, 1 SKIP',
    );
  });

  it('scrubs the password and its Basic encoding, and keeps evidence on one line', () => {
    const secrets = ['s3cret-key', basicValue('verify', 's3cret-key')];
    const text = `sent s3cret-key as Basic ${basicValue('verify', 's3cret-key')}\nsecond line`;
    expect(redact(text, secrets)).toBe('sent *** as Basic *** second line');
    expect(redact('nothing here', ['', 'x-y'])).toBe('nothing here');
  });

  it('shortens digests and sizes for the table', () => {
    expect(shortDigest(`sha256:${'a'.repeat(64)}`)).toBe('sha256:aaaaaaaaaaaa…');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
  });

  it('keeps the message of a client log line', () => {
    expect(
      lastErrorLine(
        'Getting image source signatures\ntime="2030-01-01T00:00:00Z" level=fatal msg="reading manifest v1 in h/acme/app: received unexpected HTTP status: 502 Bad Gateway"\n',
      ),
    ).toBe('reading manifest v1 in h/acme/app: received unexpected HTTP status: 502 Bad Gateway');
    expect(lastErrorLine('Error response from daemon: denied\n')).toBe('Error response from daemon: denied');
    expect(lastErrorLine('')).toBe('(no output)');
  });
});
