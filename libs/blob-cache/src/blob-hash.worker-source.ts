/**
 * The code of a hash worker thread (BlobHashWorkerPool), run with `new Worker(source, { eval:
 * true })` so it needs no file of its own next to the compiled library (jest runs the sources,
 * the gateway runs dist/).
 *
 * Messages, in order per job (one worker owns a job, so its messages never reorder):
 *   { op: 'start', id, fd }   fd: a descriptor of the main thread's temp file, or -1
 *   { op: 'file', id, upTo }  bytes [hashed, upTo) of the file are written: read and hash them
 *   { op: 'bytes', id, chunk } hash these bytes next (a copy; used once the file is given up)
 *   { op: 'digest', id }      answer { id, hex } (or { id, error })
 *   { op: 'drop', id }        forget the job; answer { id, dropped: true }
 * File bytes are read with pread into one reused buffer per worker: no allocation per chunk,
 * and the descriptor's shared offset is never moved. The main thread keeps the descriptor open
 * until the job has answered its digest or its drop.
 */
export const BLOB_HASH_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');

const READ_BYTES = 1024 * 1024;
const buffer = Buffer.allocUnsafe(READ_BYTES);
const jobs = new Map();

function fail(id, job, error) {
  job.error = job.error || (error && error.message) || String(error);
}

function readFile(id, job, upTo) {
  while (!job.error && job.hashed < upTo) {
    const want = Math.min(READ_BYTES, upTo - job.hashed);
    let n;
    try {
      n = readSync(job.fd, buffer, 0, want, job.hashed);
    } catch (error) {
      return fail(id, job, error);
    }
    if (n === 0) return fail(id, job, new Error('the temp file ends at byte ' + job.hashed + ', before ' + upTo));
    job.hash.update(n === READ_BYTES ? buffer : buffer.subarray(0, n));
    job.hashed += n;
  }
}

parentPort.on('message', (m) => {
  if (m.op === 'start') {
    jobs.set(m.id, { fd: m.fd, hash: createHash('sha256'), hashed: 0, error: undefined });
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.op === 'file') readFile(m.id, job, m.upTo);
  else if (m.op === 'bytes') {
    if (!job.error) job.hash.update(m.chunk);
    job.hashed += m.chunk.length;
  } else if (m.op === 'digest') {
    jobs.delete(m.id);
    parentPort.postMessage(job.error ? { id: m.id, error: job.error } : { id: m.id, hex: job.hash.digest('hex') });
  } else if (m.op === 'drop') {
    jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, dropped: true });
  }
});
`;
