export * from './namespaces.ts';
export * from './xml/element.ts';
export * from './xml/escape.ts';
export * from './xml/parser.ts';
export * from './errors.ts';
export * from './sasl/index.ts';
export * from './jid.ts';
export * from './precis.ts';
