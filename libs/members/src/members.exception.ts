/** Operator-facing errors of the members domain; the CLI prints the message as is. */
export type MembersErrorCode =
  | 'username_invalid'
  | 'member_exists'
  | 'member_not_found'
  | 'access_key_not_found'
  | 'access_key_ambiguous'
  | 'expiry_invalid';

export class MembersError extends Error {
  constructor(
    readonly code: MembersErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MembersError';
  }
}
