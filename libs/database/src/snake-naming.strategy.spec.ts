import { SnakeNamingStrategy } from './snake-naming.strategy';

describe('SnakeNamingStrategy', () => {
  const s = new SnakeNamingStrategy();

  it('maps camelCase properties to snake_case columns', () => {
    expect(s.columnName('occurredAt', undefined, [])).toBe('occurred_at');
    expect(s.columnName('httpStatus', undefined, [])).toBe('http_status');
    expect(s.columnName('durationMs', undefined, [])).toBe('duration_ms');
    expect(s.columnName('id', undefined, [])).toBe('id');
  });

  it('keeps an explicit column name as written', () => {
    expect(s.columnName('whatever', 'keyHash', [])).toBe('keyHash');
  });

  it('prefixes embedded columns', () => {
    expect(s.columnName('lastUsedAt', undefined, ['accessKey'])).toBe('access_key_last_used_at');
  });

  it('derives table names from class names unless one is given', () => {
    expect(s.tableName('AuditEvent', undefined)).toBe('audit_event');
    expect(s.tableName('AuditEvent', 'audit_events')).toBe('audit_events');
  });

  it('names join columns after the relation and the referenced column', () => {
    expect(s.joinColumnName('member', 'id')).toBe('member_id');
    expect(s.joinColumnName('accessKey', 'id')).toBe('access_key_id');
  });
});
