import { OciError } from '@gatehouse/oci';

/** Byte order, as the distribution spec's `last` compares. */
export function lexical(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** OCI `n`/`last` pagination over a sorted list; `next` is the query of the following page. */
export function paginate(
  sorted: string[],
  query: Record<string, string | undefined>,
): { items: string[]; next?: string } {
  const last = query.last;
  let n: number | undefined;
  if (query.n !== undefined) {
    if (!/^\d{1,6}$/.test(query.n)) {
      throw new OciError('PAGINATION_NUMBER_INVALID', {
        message: 'n must be a non-negative integer',
        reason: 'pagination_number_invalid',
      });
    }
    n = Number(query.n);
  }
  const after = last === undefined ? sorted : sorted.filter((x) => x > last);
  if (n === undefined) return { items: after };
  const items = after.slice(0, n);
  if (after.length > n && items.length > 0) {
    return { items, next: `n=${n}&last=${encodeURIComponent(items[items.length - 1])}` };
  }
  return { items };
}
