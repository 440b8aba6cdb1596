/**
 * converge consumer library: what applications embed so that a credential rotation is a
 * non-event (no restart, no failed query) and each process reports which generation it uses.
 *
 * @example
 * import { GenerationReporter, RotatingPgPool, SecretsManagerSource } from '@converge/consumer';
 *
 * const pool = new RotatingPgPool({
 *   source: new SecretsManagerSource({ secretId: 'prod/orders-db', includePending: true }),
 *   caBundlePath: '/etc/ssl/rds-global-bundle.pem',
 * });
 * await pool.ready();
 * // The reporter also tells the pool its consumer name: every connection is then named
 * // `cv1:orders-api:<generation>:<host>:<pid>` in pg_stat_activity (lambda/shared/application-name.ts).
 * new GenerationReporter({ subject: pool, consumer: 'orders-api' }).start();
 * await pool.query('SELECT 1');
 */
export {
  APPLICATION_NAME_VERSION,
  MAX_APPLICATION_NAME_BYTES,
  formatApplicationName,
  parseApplicationName,
} from '../lambda/shared/application-name';
export type { SessionAttribution } from '../lambda/shared/application-name';
export { CredentialAdoption, PENDING_RETRY_BASE_MS, PENDING_RETRY_MAX_MS } from './credential-adoption';
export type {
  CredentialAdoptionEvents,
  CredentialAdoptionOptions,
  CredentialValidator,
  PendingRejectedInfo,
  PendingRetryOptions,
} from './credential-adoption';
export { FileSource } from './file-source';
export type { FileSourceOptions } from './file-source';
export { DEFAULT_FETCH_TIMEOUT_MS, RefreshingSecret, refreshingSnapshot } from './refreshing-secret';
export type {
  RefreshingSecretEvents,
  RefreshingSecretOptions,
  RefreshOptions,
  ReloadFailureInfo,
  ReloadInfo,
} from './refreshing-secret';
export {
  EmfSink,
  GenerationReporter,
  MemorySink,
  PUT_METRIC_DATA_MAX_ENTRIES,
  PutMetricDataSink,
  emfDocuments,
} from './reporter';
export type {
  CloudWatchSender,
  EmfSinkOptions,
  GenerationReporterEvents,
  GenerationReporterOptions,
  MetricPoint,
  MetricSink,
  MetricUnitName,
  PutMetricDataSinkOptions,
  ReportSubject,
} from './reporter';
export { DEFAULT_AUTH_FAILURE_BACKOFF_MS, RotatingPgPool } from './rotating-pg-pool';
export type {
  PassThroughPoolConfig,
  PooledConnectionInfo,
  RotatingPgPoolEvents,
  RotatingPgPoolOptions,
} from './rotating-pg-pool';
export { sameSnapshot } from './secret-source';
export type { SecretFetchOptions, SecretSnapshot, SecretSource, SecretVersion } from './secret-source';
export { DEFAULT_HTTP_TIMEOUTS, SecretsManagerSource } from './secrets-manager-source';
export type { SecretsManagerSourceOptions } from './secrets-manager-source';
// The errors callers of the library need to tell apart.
export {
  AuthenticationFailedError,
  AwsCallError,
  ConvergeError,
  CredentialRejectedError,
  DatabaseConnectionError,
  InvalidSecretError,
  PoolEndedError,
  SecretFetchTimeoutError,
  SecretUnavailableError,
  TlsRequiredError,
} from '../lambda/shared/errors';
export type { ConnectionOptions } from '../lambda/shared/pg-connection';
