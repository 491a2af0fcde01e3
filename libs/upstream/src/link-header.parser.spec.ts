import { nextLinkUrl, parseLinkHeader } from './link-header.parser';

describe('parseLinkHeader', () => {
  it("parses Forgejo's relative next link", () => {
    expect(parseLinkHeader('</v2/acme/app/tags/list?last=latest&n=2>; rel="next"')).toEqual([
      { target: '/v2/acme/app/tags/list?last=latest&n=2', params: { rel: 'next' } },
    ]);
  });

  it('parses several links, unquoted rel and extra parameters', () => {
    const links = parseLinkHeader(
      '<https://a/x?page=2>; rel=next; title="a, b", <https://a/x?page=9>; rel="last"',
    );
    expect(links).toEqual([
      { target: 'https://a/x?page=2', params: { rel: 'next', title: 'a, b' } },
      { target: 'https://a/x?page=9', params: { rel: 'last' } },
    ]);
  });

  it('returns nothing for an absent or malformed header', () => {
    expect(parseLinkHeader(undefined)).toEqual([]);
    expect(parseLinkHeader('garbage')).toEqual([]);
  });
});

describe('nextLinkUrl', () => {
  it('resolves the next link against the page URL', () => {
    const url = nextLinkUrl(
      '</v2/acme/app/tags/list?last=multi>; rel="next"',
      'http://127.0.0.1:3000/v2/acme/app/tags/list?n=5',
    );
    expect(url?.toString()).toBe('http://127.0.0.1:3000/v2/acme/app/tags/list?last=multi');
  });

  it('ignores links that are not rel=next', () => {
    expect(nextLinkUrl('</x>; rel="prev"', 'http://h/')).toBeNull();
    expect(nextLinkUrl('</x>; rel="prev next"', 'http://h/')?.pathname).toBe('/x');
  });
});
