export * from './download-audit';
export * from './download-catalog.service';
export * from './download-store';
export * from './downloads.module';
export * from './downloads.service';
export * from './downloads.readiness';
