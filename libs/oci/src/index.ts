export * from './oci-error';
export * from './grammar';
export * from './oci-path';
export * from './media-types';
export * from './digest';
export * from './manifest';
export * from './canonical-tag';
export * from './image-reference';
