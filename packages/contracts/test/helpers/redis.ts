// The repository's shared redis-server starter (test/support/redis-server.ts).
export { freePort, type RedisServer, startRedis } from '../../../../test/support/redis-server.js';
