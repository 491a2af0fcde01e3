export interface EnvelopeError {
  code: string;
  message: string;
  detail?: unknown;
}

/**
 * Reads `{"errors":[{"code","message","detail"}]}`. Returns null when the body is not a
 * well-formed envelope: every error needs a string code and a string message.
 */
export function parseEnvelope(body: string): EnvelopeError[] | null {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return null;
  }
  const errors = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return null;
  const out: EnvelopeError[] = [];
  for (const e of errors) {
    const { code, message, detail } = (e ?? {}) as Record<string, unknown>;
    if (typeof code !== 'string' || typeof message !== 'string') return null;
    out.push({ code, message, ...(detail !== undefined ? { detail } : {}) });
  }
  return out;
}

/** `404 MANIFEST_UNKNOWN: manifest unknown to registry`, or the start of a body that is no envelope. */
export function describeErrorResponse(status: number, body: string): string {
  const errors = parseEnvelope(body);
  if (errors) return `${status} ${errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`;
  const text = body.trim().replace(/\s+/g, ' ');
  return `${status} (no OCI error envelope${text ? `: ${text.slice(0, 120)}` : ', empty body'})`;
}

export type EnvelopeExpectation = { status: number; code: string };

/** Whether a response is exactly the expected refusal, and if not, why not. */
export function checkEnvelope(
  status: number,
  body: string,
  expected: EnvelopeExpectation,
): { ok: true; text: string } | { ok: false; text: string } {
  const text = describeErrorResponse(status, body);
  const errors = parseEnvelope(body);
  if (status !== expected.status)
    return { ok: false, text: `expected ${expected.status} ${expected.code}, got ${text}` };
  if (!errors)
    return { ok: false, text: `expected an OCI error envelope with ${expected.code}, got ${text}` };
  if (errors[0].code !== expected.code)
    return { ok: false, text: `expected ${expected.status} ${expected.code}, got ${text}` };
  return { ok: true, text };
}
