import { InitialSchema1767225600000 } from './1767225600000-initial-schema';

/** Every migration, oldest first. A new migration is one file here and one line in this list. */
export const MIGRATIONS = [InitialSchema1767225600000];
