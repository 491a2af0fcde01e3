import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, NotFoundException, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';

/** The console's static files: next to this module in the source tree and in dist/ (the build copies them). */
export const CONSOLE_ASSETS_DIR = join(__dirname, 'assets');

const TYPES: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'uPlot.iife.min.js': 'text/javascript; charset=utf-8',
  'uPlot.min.css': 'text/css; charset=utf-8',
};

/** Where each file comes from: ours next to this module, the chart library from its package. */
function assetPath(name: string): string {
  return name.startsWith('uPlot.') ? require.resolve(`uplot/dist/${name}`) : join(CONSOLE_ASSETS_DIR, name);
}

/** Serves the fixed list of console assets from memory; nothing else under /console/assets/. */
@Controller('console/assets')
export class ConsoleAssetsController {
  private readonly files = new Map<string, Buffer>();

  constructor() {
    for (const name of Object.keys(TYPES)) this.files.set(name, readFileSync(assetPath(name)));
  }

  @Get(':name')
  asset(@Param('name') name: string, @Res() reply: FastifyReply): void {
    const body = Object.hasOwn(TYPES, name) ? this.files.get(name) : undefined;
    if (!body) throw new NotFoundException();
    void reply
      .header('content-type', TYPES[name])
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'public, max-age=300')
      .send(body);
  }
}
