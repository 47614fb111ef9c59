export * from './email.js';
export * from './errors.js';
export * from './keyformat.js';
export * from './origins.js';
export * from './schemas.js';
