import { checkEnvelope, describeErrorResponse, parseEnvelope } from './oci-envelope';

describe('OCI error envelope', () => {
  const manifestUnknown = JSON.stringify({
    errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: {} }],
  });

  it('reads a well-formed envelope and refuses anything else', () => {
    expect(parseEnvelope(manifestUnknown)).toEqual([
      { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown to registry', detail: {} },
    ]);
    expect(parseEnvelope('not json')).toBeNull();
    expect(parseEnvelope('{"errors":[]}')).toBeNull();
    expect(parseEnvelope('{"errors":[{"code":"X"}]}')).toBeNull();
    expect(parseEnvelope('{"message":"nope"}')).toBeNull();
  });

  it('describes a refusal in one line, and says when the body is no envelope', () => {
    expect(describeErrorResponse(404, manifestUnknown)).toBe(
      '404 MANIFEST_UNKNOWN: manifest unknown to registry',
    );
    expect(describeErrorResponse(502, '<html>\n<b>Bad   gateway</b>')).toBe(
      '502 (no OCI error envelope: <html> <b>Bad gateway</b>)',
    );
    expect(describeErrorResponse(401, '')).toBe('401 (no OCI error envelope, empty body)');
  });

  it('accepts only the expected status and code', () => {
    const expected = { status: 404, code: 'MANIFEST_UNKNOWN' };
    expect(checkEnvelope(404, manifestUnknown, expected)).toEqual({
      ok: true,
      text: '404 MANIFEST_UNKNOWN: manifest unknown to registry',
    });
    expect(checkEnvelope(200, '{}', expected)).toEqual({
      ok: false,
      text: 'expected 404 MANIFEST_UNKNOWN, got 200 (no OCI error envelope: {})',
    });
    expect(checkEnvelope(404, 'gone', expected).text).toMatch(
      /expected an OCI error envelope with MANIFEST_UNKNOWN/,
    );
    const nameUnknown = JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'x' }] });
    expect(checkEnvelope(404, nameUnknown, expected)).toEqual({
      ok: false,
      text: 'expected 404 MANIFEST_UNKNOWN, got 404 NAME_UNKNOWN: x',
    });
  });
});
