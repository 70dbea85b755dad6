import { MemoryDcs, MemoryStore } from '../../src/dcs/memory/memory-dcs.js';
import { runDcsContract } from '../contract/dcs-contract.js';

const store = new MemoryStore();
runDcsContract('memory', () => ({
  create: (options) => new MemoryDcs(store, options),
  createUnreachable: (options) => {
    const dead = new MemoryStore();
    dead.reachable = false;
    return new MemoryDcs(dead, options);
  },
}));
