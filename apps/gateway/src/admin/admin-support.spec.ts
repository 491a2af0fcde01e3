import { HttpException } from '@nestjs/common';
import { EntitlementsError } from '@gatehouse/entitlements';
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

  it('refuses a bad tag, a bad repository, or a host:port prefix', () => {
    expect(() => splitImage('acme/app:bad tag')).toThrow(HttpException);
    expect(() => splitImage('Acme/App:v1')).toThrow(EntitlementsError);
    expect(() => splitImage('registry.example.com:5000/acme/app')).toThrow(EntitlementsError);
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
