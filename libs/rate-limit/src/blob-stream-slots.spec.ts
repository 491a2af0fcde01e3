import { GatewayConfig } from '@gatehouse/config';
import { MetricsService } from '@gatehouse/observability';
import { BlobStreamSlots } from './blob-stream-slots';

const slots = (perKey: number) =>
  new BlobStreamSlots({ rateLimit: { blobStreamsPerMember: perKey } } as GatewayConfig, new MetricsService());

describe('BlobStreamSlots', () => {
  it('gives each key its cap and takes slots back, once each', () => {
    const s = slots(2);
    const a1 = s.acquire('member:a')!;
    const a2 = s.acquire('member:a')!;
    expect(s.acquire('member:a')).toBeNull();
    expect(s.acquire('member:b')).not.toBeNull();
    expect(s.count('member:a')).toBe(2);
    a1.release();
    a1.release();
    expect(s.count('member:a')).toBe(1);
    expect(s.acquire('member:a')).not.toBeNull();
    a2.release();
    expect(s.count()).toBe(2);
  });

  it('counts but never refuses when the cap is 0', () => {
    const s = slots(0);
    const taken = Array.from({ length: 1000 }, () => s.acquire('ip:10.0.0.1')!);
    expect(taken.every(Boolean)).toBe(true);
    for (const t of taken) t.release();
    expect(s.count()).toBe(0);
  });
});
