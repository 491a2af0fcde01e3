import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { abortSignalOf, writeReply } from './reply-writer';

/** The parts of a Fastify reply the writer touches, recording what it did. */
function fakeReply() {
  const raw = Object.assign(new EventEmitter(), {
    headersSent: false,
    writableFinished: false,
    removed: [] as string[],
    removeHeader(name: string) {
      this.removed.push(name);
    },
  });
  const reply = {
    raw,
    statusCode: 0,
    headersOut: {} as Record<string, string>,
    payload: undefined as unknown,
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    headers(all: Record<string, string>) {
      Object.assign(this.headersOut, all);
      return this;
    },
    header(name: string, value: string) {
      this.headersOut[name] = value;
      return this;
    },
    removeHeader(name: string) {
      delete this.headersOut[name];
      return this;
    },
    send(payload?: unknown) {
      this.payload = payload;
      return this;
    },
  };
  return reply;
}
const asFastify = (r: ReturnType<typeof fakeReply>) => r as unknown as FastifyReply;

describe('writeReply', () => {
  it('writes a JSON body with its content type, and bytes as they are', () => {
    const json = fakeReply();
    writeReply(asFastify(json), { status: 200, headers: { 'Cache-Control': 'no-cache' }, body: { a: 1 } });
    expect(json).toMatchObject({
      statusCode: 200,
      payload: '{"a":1}',
      headersOut: { 'Cache-Control': 'no-cache', 'Content-Type': 'application/json; charset=utf-8' },
    });
    const bytes = fakeReply();
    writeReply(asFastify(bytes), { status: 200, headers: {}, body: Buffer.from('{}') });
    expect(bytes.payload).toEqual(Buffer.from('{}'));
    expect(bytes.headersOut['Content-Type']).toBeUndefined();
  });

  it("takes a stream's headers back when it fails before the first byte, not after", () => {
    const early = fakeReply();
    const body = new PassThrough();
    writeReply(asFastify(early), { status: 206, headers: { 'Content-Range': 'bytes 0-1/9' }, body });
    expect(early.payload).toBe(body);
    body.emit('error', new Error('upstream went away'));
    expect(early.headersOut['Content-Range']).toBeUndefined();
    expect(early.raw.removed).toEqual(['Content-Range']);

    const late = fakeReply();
    const started = new PassThrough();
    writeReply(asFastify(late), { status: 200, headers: { 'Content-Length': '9' }, body: started });
    late.raw.headersSent = true;
    started.emit('error', new Error('cut mid-body'));
    expect(late.headersOut['Content-Length']).toBe('9');
  });
});

describe('abortSignalOf', () => {
  it('aborts when the client goes away before the reply finished, not after it finished', () => {
    const gone = fakeReply();
    const signal = abortSignalOf(asFastify(gone));
    gone.raw.emit('close');
    expect(signal.aborted).toBe(true);

    const done = fakeReply();
    const finished = abortSignalOf(asFastify(done));
    done.raw.writableFinished = true;
    done.raw.emit('close');
    expect(finished.aborted).toBe(false);
  });
});
