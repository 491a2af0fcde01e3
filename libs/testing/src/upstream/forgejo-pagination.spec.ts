import { encodeQuery, paginateCatalog, paginateTags, parseN } from './forgejo-pagination';

describe('Forgejo tags/list pagination', () => {
  const tags = ['v1.0.0', 'Latest', 'multi', 'v1.1.0'];
  const path = '/v2/acme/app/tags/list';

  it('sends a Link even on the last page, without n when the client sent none', () => {
    const page = paginateTags(tags, {}, path);
    expect(page.items).toEqual(['latest', 'multi', 'v1.0.0', 'v1.1.0']);
    expect(page.link).toBe('</v2/acme/app/tags/list?last=v1.1.0>; rel="next"');
  });

  it('carries n when the client sent n > 0 and answers the extra page with [] and no Link', () => {
    const first = paginateTags(tags, { n: 2 }, path);
    expect(first.items).toEqual(['latest', 'multi']);
    expect(first.link).toBe('</v2/acme/app/tags/list?last=multi&n=2>; rel="next"');
    const last = paginateTags(tags, { n: 2, last: 'v1.1.0' }, path);
    expect(last).toEqual({ items: [] });
  });

  it('treats n=0 as an empty page and negative n as no limit', () => {
    expect(paginateTags(tags, { n: 0 }, path)).toEqual({ items: [] });
    expect(paginateTags(tags, { n: -1 }, path).items).toHaveLength(4);
  });

  it('compares last case-insensitively', () => {
    expect(paginateTags(tags, { last: 'V1.0.0' }, path).items).toEqual(['v1.1.0']);
  });

  it('parses n like the client sent it', () => {
    expect(parseN(null)).toBeUndefined();
    expect(parseN('abc')).toBeUndefined();
    expect(parseN('-3')).toBe(-3);
  });

  it('sorts query keys like Go url.Values', () => {
    expect(encodeQuery({ n: '2', last: 'a b' })).toBe('last=a+b&n=2');
  });
});

describe('Forgejo _catalog pagination', () => {
  const repos = ['acme/tool', 'acme/app', 'other/secret'];

  it('defaults n to 100 and sends no Link on a short page', () => {
    expect(paginateCatalog(repos, { n: 0 })).toEqual({ items: ['acme/app', 'acme/tool', 'other/secret'] });
  });

  it('sends a Link only when the page is full', () => {
    const page = paginateCatalog(repos, { n: 2 });
    expect(page.items).toEqual(['acme/app', 'acme/tool']);
    expect(page.link).toBe('</v2/_catalog?last=acme%2Ftool&n=2>; rel="next"');
    expect(paginateCatalog(repos, { n: 2, last: 'acme/tool' })).toEqual({ items: ['other/secret'] });
  });
});
