import { hasPrometheusFamily, readPrometheusSample } from './prometheus-text';

const TEXT = [
  '# HELP gatehouse_blob_cache_requests_total Blob requests by cache result',
  '# TYPE gatehouse_blob_cache_requests_total counter',
  'gatehouse_blob_cache_requests_total{result="miss"} 6',
  'gatehouse_blob_cache_requests_total{result="hit"} 12',
  'gatehouse_blob_cache_requests_total_extra{result="hit"} 99',
  'http_requests{route="/v2/blob",method="GET",status_code="200"} 3',
  'http_requests{method="HEAD",route="/v2/blob",status_code="200"} 4',
  '',
].join('\n');

describe('Prometheus text', () => {
  it('reads one labelled sample by name, not a prefix of another name', () => {
    expect(readPrometheusSample(TEXT, 'gatehouse_blob_cache_requests_total', { result: 'hit' })).toBe(12);
    expect(readPrometheusSample(TEXT, 'gatehouse_blob_cache_requests_total', { result: 'miss' })).toBe(6);
  });

  it('sums the samples a label subset matches, in any label order', () => {
    expect(readPrometheusSample(TEXT, 'http_requests', { route: '/v2/blob' })).toBe(7);
    expect(readPrometheusSample(TEXT, 'http_requests', { method: 'HEAD', status_code: '200' })).toBe(4);
  });

  it('is null for a series that never moved, and tells a declared family from a missing one', () => {
    const declaredOnly = TEXT.split('\n').slice(0, 2).join('\n');
    expect(
      readPrometheusSample(declaredOnly, 'gatehouse_blob_cache_requests_total', { result: 'hit' }),
    ).toBeNull();
    expect(hasPrometheusFamily(declaredOnly, 'gatehouse_blob_cache_requests_total')).toBe(true);
    expect(hasPrometheusFamily('process_cpu_seconds_total 1\n', 'gatehouse_blob_cache_requests_total')).toBe(
      false,
    );
  });
});
