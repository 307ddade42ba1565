// Every refusal of SPEC §5 in cluster mode (§8): the suite of tests/e2e/refusals.mjs, run
// against one cluster of two nodes on Redis, with observers on both nodes and one through
// nginx. A refusal on node A must leave nothing in Redis (no key names a new clip), nothing
// in either node's replay, and no broadcast on either node; the ban is made on node B and
// holds on node A. (`unavailable`, the refusal while Redis is down, is in faults.test.mjs.)
//
// Fails until cluster mode lands (issue 11): the nodes are started with --redis-url.
import { clipKeysInRedis, sharedCluster } from './services.mjs';
import { ADMIN_TOKEN, refusalTests, seed } from '../e2e/refusals.mjs';

const shared = sharedCluster({ args: ['--filter-profanity', '--admin-token', ADMIN_TOKEN] });

/** Node A takes the sender; observers on A, on B (over polling) and through nginx. */
async function cluster(h) {
  const { redis, nodes: [a, b], url, startedAt } = shared.cluster;
  const world = {
    url: a.url,
    nodes: [a, b],
    observers: [
      await h.client(a.url, { name: 'observer-a' }),
      await h.client(b.url, { name: 'observer-b', transports: ['polling'] }),
      await h.client(url, { name: 'observer-lb', query: { lb: `observer-${Math.random()}` } }),
    ],
    storedCount: async () => (await clipKeysInRedis(redis, startedAt)).size,
    adminUrl: b.url,
  };
  await seed(h, world);
  return world;
}

refusalTests({ test: shared.test, world: cluster });
