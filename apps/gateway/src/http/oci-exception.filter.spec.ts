import { ArgumentsHost, HttpException, NotFoundException } from '@nestjs/common';
import { AppLogger } from '@gatehouse/observability';
import { OciError } from '@gatehouse/oci';
import { OciExceptionFilter } from './oci-exception.filter';

function fakeReply() {
  const reply = {
    statusCode: 0,
    headersOut: {} as Record<string, string>,
    payload: undefined as unknown,
    sent: false,
    raw: {
      headersSent: false,
      destroyed: false,
      destroy() {
        this.destroyed = true;
      },
    },
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    header(k: string, v: string) {
      this.headersOut[k.toLowerCase()] = v;
      return this;
    },
    send(p?: unknown) {
      this.payload = p;
      return this;
    },
  };
  return reply;
}

function host(url: string, reply: ReturnType<typeof fakeReply>, method = 'GET'): ArgumentsHost {
  const request = { url, method, id: 'req-7' };
  return {
    switchToHttp: () => ({ getResponse: () => reply, getRequest: () => request }),
  } as unknown as ArgumentsHost;
}

describe('OciExceptionFilter', () => {
  const logged: Array<{ level: string; obj: unknown }> = [];
  const logger = {
    error: (obj: unknown) => logged.push({ level: 'error', obj }),
    debug: (obj: unknown) => logged.push({ level: 'debug', obj }),
    warn: (obj: unknown) => logged.push({ level: 'warn', obj }),
  } as unknown as AppLogger;
  const filter = new OciExceptionFilter(logger);
  beforeEach(() => (logged.length = 0));

  it('writes an OciError as the OCI envelope with its status and headers', () => {
    const reply = fakeReply();
    filter.catch(
      new OciError('UNAUTHORIZED', { headers: { 'WWW-Authenticate': 'Bearer realm="x"' } }),
      host('/v2/', reply),
    );
    expect(reply.statusCode).toBe(401);
    expect(reply.headersOut['www-authenticate']).toBe('Bearer realm="x"');
    expect(reply.headersOut['docker-distribution-api-version']).toBe('registry/2.0');
    expect(reply.payload).toEqual({
      errors: [
        {
          code: 'UNAUTHORIZED',
          message: 'authentication required',
          detail: { requestId: 'req-7', help: expect.stringContaining('gatehouse audit --request-id req-7') },
        },
      ],
    });
  });

  it("puts the request id and the vendor's look-up next to an error's own detail", () => {
    const reply = fakeReply();
    filter.catch(
      new OciError('NAME_INVALID', { detail: { name: 'a//b' } }),
      host('/v2/a//b/tags/list', reply),
    );
    expect(reply.payload).toEqual({
      errors: [
        {
          code: 'NAME_INVALID',
          message: 'invalid repository name',
          detail: {
            name: 'a//b',
            requestId: 'req-7',
            help: 'quote this request id to your registry provider; they can look it up with: gatehouse audit --request-id req-7',
          },
        },
      ],
    });
    const plain = fakeReply();
    filter.catch(new OciError('DENIED', { detail: 'text' }), host('/v2/x/manifests/y', plain));
    expect(plain.payload).toMatchObject({ errors: [{ detail: { info: 'text', requestId: 'req-7' } }] });
  });

  it('turns an unknown error into a 500 that names only the request id, and logs it', () => {
    const reply = fakeReply();
    filter.catch(
      new Error('db password=hunter2 at /srv/app.js:10'),
      host('/v2/acme/app/manifests/v1', reply),
    );
    expect(reply.statusCode).toBe(500);
    const text = JSON.stringify(reply.payload);
    expect(text).toContain('req-7');
    expect(text).not.toMatch(/hunter2|app\.js|stack/);
    expect(logged.map((l) => l.level)).toEqual(['error']);
  });

  it('speaks the OCI envelope for Nest HttpExceptions on registry paths only', () => {
    const reply = fakeReply();
    filter.catch(new NotFoundException(), host('/v2/x', reply));
    expect(reply.payload).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] });
    const other = fakeReply();
    filter.catch(new NotFoundException(), host('/nothing', other));
    expect(other.statusCode).toBe(404);
    expect(other.payload).toMatchObject({ statusCode: 404 });
  });

  it('converts errors that know their member-facing form', () => {
    const reply = fakeReply();
    const upstreamFailure = Object.assign(new Error('Forgejo rejected FORGEJO_API_TOKEN'), {
      toOciError: () => new OciError('UPSTREAM_ERROR'),
    });
    filter.catch(upstreamFailure, host('/v2/acme/app/blobs/x', reply));
    expect(reply.statusCode).toBe(502);
    expect(JSON.stringify(reply.payload)).not.toContain('FORGEJO_API_TOKEN');
  });

  it('cuts the connection without an error log when a client aborts mid-stream', () => {
    const reply = fakeReply();
    reply.raw.headersSent = true;
    filter.catch(
      Object.assign(new Error('aborted'), { code: 'ECONNRESET' }),
      host('/v2/acme/app/blobs/x', reply),
    );
    expect(reply.raw.destroyed).toBe(true);
    expect(logged).toEqual([]);
  });

  it('keeps operator prose in the log: never in the body, the status from the table', () => {
    const reply = fakeReply();
    filter.catch(
      new OciError('UPSTREAM_ERROR', { reason: 'fill_timeout', logDetail: 'sha256:abc after 1800000 ms' }),
      host('/v2/acme/app/blobs/sha256:abc', reply),
    );
    expect(reply.statusCode).toBe(502);
    expect(JSON.stringify(reply.payload)).not.toMatch(/1800000|fill_timeout/);
    expect(logged).toEqual([
      {
        level: 'warn',
        obj: expect.objectContaining({
          code: 'UPSTREAM_ERROR',
          reason: 'fill_timeout',
          detail: 'sha256:abc after 1800000 ms',
        }),
      },
    ]);
  });

  it('answers a framework 400 with REQUEST_INVALID and a 415 with the same row, not a status of its own', () => {
    for (const status of [400, 415]) {
      const reply = fakeReply();
      filter.catch(new HttpException('bad', status), host('/auth/token', reply));
      expect({ status: reply.statusCode, payload: reply.payload }).toEqual({
        status: 400,
        payload: {
          errors: [
            {
              code: 'REQUEST_INVALID',
              message: 'bad',
              detail: {
                requestId: 'req-7',
                help: expect.stringContaining('gatehouse audit --request-id req-7'),
              },
            },
          ],
        },
      });
    }
  });

  it('sends no body for HEAD', () => {
    const reply = fakeReply();
    filter.catch(new OciError('MANIFEST_UNKNOWN'), host('/v2/acme/app/manifests/v1', reply, 'HEAD'));
    expect(reply.statusCode).toBe(404);
    expect(reply.payload).toBeUndefined();
  });
});
