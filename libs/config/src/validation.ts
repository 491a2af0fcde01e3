/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * The class-validator pieces the environment uses, taken from their own modules.
 *
 * class-validator's index loads every decorator it has, and with them all of validator.js and
 * libphonenumber-js: ~60 ms of a ~175 ms `gatehouse audit` (dev-docs/decisions.md, "CLI
 * start"). The environment needs nine decorators and validateSync; these paths are the files the
 * index itself re-exports, so they are the same functions and one metadata storage
 * (validation.spec.ts checks identity against the index, so an upgrade that moves a file fails
 * there, not at start). Types come from the index: `typeof import(...)` loads nothing.
 */
type CV = typeof import('class-validator');
const cv = (path: string) => require(`class-validator/cjs/${path}`);

export type { ValidationArguments, ValidationError, ValidatorConstraintInterface } from 'class-validator';

export const { IsOptional } = cv('decorator/common/IsOptional') as Pick<CV, 'IsOptional'>;
export const { IsIn } = cv('decorator/common/IsIn') as Pick<CV, 'IsIn'>;
export const { Validate, ValidatorConstraint } = cv('decorator/common/Validate') as Pick<
  CV,
  'Validate' | 'ValidatorConstraint'
>;
export const { IsBoolean } = cv('decorator/typechecker/IsBoolean') as Pick<CV, 'IsBoolean'>;
export const { IsInt } = cv('decorator/typechecker/IsInt') as Pick<CV, 'IsInt'>;
export const { IsString } = cv('decorator/typechecker/IsString') as Pick<CV, 'IsString'>;
export const { Matches } = cv('decorator/string/Matches') as Pick<CV, 'Matches'>;
export const { Max } = cv('decorator/number/Max') as Pick<CV, 'Max'>;
export const { Min } = cv('decorator/number/Min') as Pick<CV, 'Min'>;

const { Validator } = cv('validation/Validator') as { Validator: new () => unknown };
const { getFromContainer } = cv('container') as Pick<CV, 'getFromContainer'>;

/** The index's validateSync for an object: the container's Validator, as the index does it. */
export const validateSync: CV['validateSync'] = ((object: object, options?: object) =>
  (getFromContainer(Validator) as { validateSync(o: object, opts?: object): unknown }).validateSync(
    object,
    options,
  )) as CV['validateSync'];
