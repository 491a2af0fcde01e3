import { explainHint } from './explain-hint';

describe('explainHint: the command an upstream Gatehouse operator runs for a refused request', () => {
  it.each([
    ['GET /downloads/releases/acme/tool/v1.0.0/tool-linux-amd64', 'releases:acme/tool@v1.0.0'],
    ['GET /downloads/releases/acme/tool', 'releases:acme/tool@<tag>'],
    ['GET /downloads/packages/acme/cli/1.4.0', 'packages:acme/cli@1.4.0'],
    ['HEAD /v2/acme/app/manifests/v1.2.0', 'acme/app:v1.2.0'],
    ['GET /v2/acme/team/app/manifests/sha256:' + 'a'.repeat(64), 'acme/team/app:<tag>'],
    ['GET /v2/acme/app/tags/list?n=1', 'acme/app:<tag>'],
    ['GET /auth/token?scope=repository%3Aacme%2Fapp%3Apull', '<image>:<tag>'],
    [undefined, '<image>:<tag>'],
  ])('%s → %s', (request, target) => {
    expect(explainHint('site-b', request)).toBe(`gatehouse explain site-b ${target}`);
  });
});
