import { ServerResponse } from 'node:http';
import { DIST_HEADER, FrontContext } from './forgejo-front.context';

/** Forgejo's answers: text errors, OCI errors, the Bearer challenge. */
export function frontResponses(ctx: FrontContext) {
  const text = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      ...headers,
    });
    res.end(body);
  };
  const ociError = (
    res: ServerResponse,
    status: number,
    code: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, { ...DIST_HEADER, 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code, message: '' }] }) + '\n');
  };
  const challenge = (res: ServerResponse): void =>
    ociError(res, 401, 'UNAUTHORIZED', {
      'www-authenticate': `Bearer realm="${ctx.rootUrl}v2/token",service="container_registry",scope="*"`,
    });
  const authGroupVerify = (res: ServerResponse): void => text(res, 401, 'authGroup.Verify\n');
  const reqPackageAccess = (res: ServerResponse): void =>
    text(res, 401, 'reqPackageAccess\n', { 'www-authenticate': 'Basic realm="Gitea Package API"' });
  const internalError = (res: ServerResponse): void => {
    res.writeHead(500, DIST_HEADER);
    res.end();
  };

  return { text, ociError, challenge, authGroupVerify, reqPackageAccess, internalError };
}

export type FrontResponses = ReturnType<typeof frontResponses>;
