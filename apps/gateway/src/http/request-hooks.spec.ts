import { clientRequestId, offeredMemberTag } from './request-hooks';

describe('correlation headers a client offers', () => {
  const req = (headers: Record<string, string | string[]>) => ({ headers });

  it('keeps a member tag of one safe value of at most 64 characters, like the client request id', () => {
    expect(offeredMemberTag(req({ 'x-gatehouse-member-tag': 'm1-0123abcd' }))).toBe('m1-0123abcd');
    expect(offeredMemberTag(req({ 'x-gatehouse-member-tag': 'x'.repeat(64) }))).toBe('x'.repeat(64));
    for (const bad of ['x'.repeat(65), 'a b', '<script>', 'ü', '', 'a\nb'])
      expect([bad, offeredMemberTag(req({ 'x-gatehouse-member-tag': bad }))]).toEqual([bad, undefined]);
    expect(offeredMemberTag(req({ 'x-gatehouse-member-tag': ['a', 'b'] }))).toBeUndefined();
    expect(offeredMemberTag(req({}))).toBeUndefined();
    expect(clientRequestId(req({ 'x-request-id': 'abc-1' }))).toBe('abc-1');
  });
});
