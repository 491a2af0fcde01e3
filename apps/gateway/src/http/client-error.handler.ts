import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { OciError } from '@gatehouse/oci';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { envelopeWithRequestId } from './oci-exception.filter';

/**
 * Requests that never reach a route: bytes the HTTP parser refuses (a raw NUL, a broken request
 * line), headers past `maxHeaderSize`, and URLs the router cannot decode (`%\`, `%zz`). Fastify
 * answers those itself with its own JSON; these handlers keep the contract instead: every error
 * body is the OCI envelope, and nothing about the request is echoed back.
 */
export function ociClientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset socket has nothing left to answer (Node's own rule).
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let error: OciError;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    error = new OciError('HEADERS_TOO_LARGE');
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    error = new OciError('REQUEST_TIMEOUT');
  } else {
    error = new OciError('REQUEST_INVALID', { message: 'malformed HTTP request' });
  }
  if (socket.writable) {
    const body = JSON.stringify(error.toEnvelope());
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        'Docker-Distribution-API-Version: registry/2.0\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy();
}

/** Router-level failures (undecodable URL, oversized parameter, constraint errors) as the envelope. */
export function ociFrameworkErrors(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const code = (error as { code?: string }).code;
  const oci =
    code === 'FST_ERR_BAD_URL' || code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new OciError('NAME_INVALID', { message: 'malformed request path' })
      : new OciError('REQUEST_INVALID');
  void reply
    .status(oci.status)
    .header('Docker-Distribution-API-Version', 'registry/2.0')
    .header('Content-Type', 'application/json; charset=utf-8')
    .send(
      request.method === 'HEAD' ? undefined : JSON.stringify(envelopeWithRequestId(oci, String(request.id))),
    );
}
