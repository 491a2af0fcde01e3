import fc from 'fast-check';
import { AuditQueue } from './audit-queue';

describe('AuditQueue', () => {
  it('refuses entries beyond its capacity and keeps the oldest', () => {
    const q = new AuditQueue<number>(3);
    expect([1, 2, 3, 4, 5].map((n) => q.push(n))).toEqual([true, true, true, false, false]);
    expect(q.length).toBe(3);
    expect(q.peek(10)).toEqual([1, 2, 3]);
    expect(q.lastEnqueued).toBe(3);
  });

  it('accepts again once written entries are removed', () => {
    const q = new AuditQueue<number>(2);
    q.push(1);
    q.push(2);
    expect(q.push(3)).toBe(false);
    q.remove(1);
    expect(q.push(4)).toBe(true);
    expect(q.peek(5)).toEqual([2, 4]);
    expect(q.lastRemoved).toBe(1);
  });

  it('peek does not consume: a failed write can read the same batch again', () => {
    const q = new AuditQueue<string>(10);
    q.push('a');
    q.push('b');
    expect(q.peek(1)).toEqual(['a']);
    expect(q.peek(1)).toEqual(['a']);
    q.remove(1);
    expect(q.peek(1)).toEqual(['b']);
  });

  it('rejects a capacity below one', () => {
    expect(() => new AuditQueue(0)).toThrow(RangeError);
  });

  it('behaves as a bounded FIFO under any mix of pushes and removes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.oneof(fc.constant<'push'>('push'), fc.integer({ min: 0, max: 2000 })), {
          maxLength: 3000,
        }),
        (capacity, ops) => {
          const q = new AuditQueue<number>(capacity);
          const model: number[] = [];
          let next = 0;
          for (const op of ops) {
            if (op === 'push') {
              const accepted = q.push(next);
              expect(accepted).toBe(model.length < capacity);
              if (accepted) model.push(next);
              next++;
            } else {
              q.remove(op);
              model.splice(0, op);
            }
            expect(q.length).toBe(model.length);
          }
          expect(q.peek(capacity)).toEqual(model);
          expect(q.lastEnqueued - q.lastRemoved).toBe(model.length);
        },
      ),
    );
  });
});
