import { OciError } from './oci-error';

describe('OciError', () => {
  it('captures no stack for a refusal (4xx) and keeps it for a fault (5xx)', () => {
    const limit = Error.stackTraceLimit;
    const refusal = new OciError('DENIED', { reason: 'tag_not_entitled' });
    expect(refusal.stack).toBe('OciError: requested access to the resource is denied');
    expect(refusal.status).toBe(403);
    const fault = new OciError('UPSTREAM_ERROR');
    expect(fault.stack).toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('after').stack).toMatch(/\n\s+at /);
  });
});
