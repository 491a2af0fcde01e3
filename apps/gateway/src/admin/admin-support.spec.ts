import { HttpException } from '@nestjs/common';
import { decodeAuditCursor, encodeAuditCursor } from './admin-audit.controller';
import { splitImage } from './admin-explain.controller';

describe('splitImage', () => {
  it.each([
    ['acme/app:v1.2.3', 'acme/app', 'v1.2.3'],
    ['acme/tools/cli:1.0', 'acme/tools/cli', '1.0'],
    ['acme/app', 'acme/app', null],
  ])('%s → %s and %s', (image, repository, tag) => {
    expect(splitImage(image)).toEqual({ repository, tag });
  });

  it.each([
    ['acme/app:bad tag', 'tag_invalid'],
    ['Acme/App:v1', 'repository_invalid'],
    ['registry.example.com:5000/acme/app', 'repository_invalid'],
    [`acme/app@sha256:${'a'.repeat(64)}`, 'digest_not_explainable'],
  ])('refuses %j with a 400 (%s)', (image, code) => {
    let error: unknown;
    try {
      splitImage(image);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getStatus()).toBe(400);
    expect((error as HttpException).getResponse()).toMatchObject({ code });
  });
});

describe('audit cursor', () => {
  it('round-trips time and id and refuses anything else', () => {
    const e = {
      occurredAt: new Date('2026-01-01T12:00:00.123Z'),
      id: '0b7c7a3e-5f7e-4b5a-9a35-1c2d3e4f5a6b',
    };
    expect(decodeAuditCursor(encodeAuditCursor(e))).toEqual({ at: e.occurredAt, id: e.id });
    expect(decodeAuditCursor('bm9wZQ')).toBeNull();
    expect(
      decodeAuditCursor(Buffer.from('2026-01-01T00:00:00Z|not-a-uuid').toString('base64url')),
    ).toBeNull();
    expect(decodeAuditCursor(Buffer.from(`never|${e.id}`).toString('base64url'))).toBeNull();
  });
});
