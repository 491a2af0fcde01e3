import * as index from 'class-validator';
import * as lean from './validation';

describe('class-validator pieces from their own modules', () => {
  it.each([
    'IsOptional',
    'IsIn',
    'Validate',
    'ValidatorConstraint',
    'IsBoolean',
    'IsInt',
    'IsString',
    'Matches',
    'Max',
    'Min',
  ] as const)('%s is the function the index exports', (name) => {
    expect(lean[name]).toBe(index[name]);
  });

  it('validateSync answers as the index does, from one metadata storage', () => {
    class Probe {
      @lean.IsInt({ message: 'whole' })
      n: unknown = 'x';
    }
    const viaLean = lean.validateSync(new Probe());
    const viaIndex = index.validateSync(new Probe());
    expect(viaLean.map((e) => e.constraints)).toEqual([{ isInt: 'whole' }]);
    expect(viaLean.map((e) => e.constraints)).toEqual(viaIndex.map((e) => e.constraints));
  });
});
