export * from './oci-error';
export * from './grammar';
export * from './oci-path';
export * from './registry-url';
export * from './media-types';
export * from './digest';
export * from './manifest';
export * from './upstream-blob.types';
