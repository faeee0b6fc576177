// The repository's shared redis-server starter (test/support/redis-server.ts).
export { type RedisServer as RedisProcess, startRedis } from '../../../test/support/redis-server.js';
