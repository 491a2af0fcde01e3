import { parseRangeHeader } from './range-header.util';

describe('parseRangeHeader', () => {
  it.each([
    ['bytes=0-9', 100, { kind: 'range', start: 0, end: 9 }],
    ['bytes=10-', 100, { kind: 'range', start: 10, end: 99 }],
    ['bytes=-10', 100, { kind: 'range', start: 90, end: 99 }],
    ['bytes=-500', 100, { kind: 'range', start: 0, end: 99 }],
    ['bytes=90-500', 100, { kind: 'range', start: 90, end: 99 }],
    ['Bytes = 5 - 6', 100, { kind: 'range', start: 5, end: 6 }],
    ['bytes=99-99', 100, { kind: 'range', start: 99, end: 99 }],
  ])('%s of %d bytes selects a range', (header, size, expected) => {
    expect(parseRangeHeader(header, size)).toEqual(expected);
  });

  it.each([
    ['bytes=100-', 100],
    ['bytes=100-200', 100],
    ['bytes=-0', 100],
    ['bytes=0-', 0],
    ['bytes=-5', 0],
  ])('%s of %d bytes is unsatisfiable', (header, size) => {
    expect(parseRangeHeader(header, size)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([
    [undefined],
    ['bytes=0-1,4-5'],
    ['bytes=5-1'],
    ['bytes=-'],
    ['bytes=abc'],
    ['items=0-1'],
    ['bytes=0x10-20'],
    ['bytes=99999999999999999999-'],
    [''],
  ])('%s is ignored (serve the whole blob)', (header) => {
    expect(parseRangeHeader(header, 100)).toEqual({ kind: 'ignore' });
  });
});
