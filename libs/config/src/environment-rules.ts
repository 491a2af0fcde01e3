import { ValidationArguments, ValidatorConstraint, ValidatorConstraintInterface } from './validation';
import { parseByteSize } from './byte-size';
import { realmProblem } from './realm-rules';

/** The value transforms and custom constraints the environment's decorators use. */

export const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
export const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return value;
};
export const trimmed = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.trim() : value;

@ValidatorConstraint({ name: 'realm' })
export class RealmConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && realmProblem(value) === null;
  }
  defaultMessage(args?: ValidationArguments): string {
    return `${realmProblem(String(args?.value))}. Fix: set OCI_REGISTRY_REALM to the full http(s) URL of the token endpoint as clients reach it, e.g. https://registry.example.com/auth/token, or unset it to use https://<OCI_REGISTRY_SERVICE>/auth/token`;
  }
}

@ValidatorConstraint({ name: 'byteSize' })
export class ByteSizeConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'string' && parseByteSize(value) !== null;
  }
  defaultMessage(): string {
    return 'is not a size. Fix: use a whole number of bytes or a size like 500MB, 20GB, 1TiB (0 means no cap)';
  }
}

@ValidatorConstraint({ name: 'cidrList' })
export class CidrListConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    return value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .every((c) =>
        /^(\d{1,3}\.){3}\d{1,3}(\/(\d|[12]\d|3[0-2]))?$|^[0-9a-fA-F:]+(\/(\d{1,2}|1[01]\d|12[0-8]))?$|^(loopback|private)$/.test(
          c,
        ),
      );
  }
  defaultMessage(): string {
    return 'is not a comma-separated list of IP addresses or CIDRs. Fix: e.g. TRUST_PROXY=10.0.0.0/8,127.0.0.1 (or the words loopback, private); leave empty when no reverse proxy is in front';
  }
}
