import * as path from 'node:path';
import { register } from 'tsconfig-paths';

// Jest applies moduleNameMapper inside test workers only; the global setup runs under plain Node
// resolution, so `@gatehouse/<lib>` is mapped here the way tsconfig.json maps it.
register({ baseUrl: path.resolve(__dirname, '../../../..'), paths: { '@gatehouse/*': ['libs/*/src'] } });
