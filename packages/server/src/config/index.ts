/**
 * Parley's configuration: the `parley.yaml` schema, loading and validation, and the
 * starting file written by `parley init` (ARCHITECTURE.md §7, docs/configuration.md).
 */
export {
  BUILTIN_MODULES,
  configSchema,
  DEFAULT_SASL_MECHANISMS,
  duration,
  formatDuration,
  LOG_LEVELS,
  parseDuration,
  REGISTER_FIELD_TYPES,
  REGISTER_POLICIES,
  REGISTER_RESERVED_FIELDS,
  SASL_MECHANISMS,
  TLS_VERSIONS,
  type BuiltinModuleName,
  type DurationSchema,
  type LogLevel,
  type ParleyConfig,
  type SaslMechanism,
  type StorageOptions,
} from './schema.ts';
export {
  ConfigError,
  DEFAULT_CONFIG_FILE,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  registrationPolicy,
  resolveDataPath,
  type ConfigProblem,
} from './load.ts';
export { configTemplate } from './template.ts';
