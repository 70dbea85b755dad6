// Every command, listed explicitly so that start-up imports this small index and nothing else.
import Agent from './agent.js';
import Dsn from './dsn.js';
import History from './history.js';
import List from './list.js';
import ShowConfig from './show-config.js';
import Topology from './topology.js';
import Version from './version.js';

export const COMMANDS = {
  agent: Agent,
  dsn: Dsn,
  history: History,
  list: List,
  'show-config': ShowConfig,
  topology: Topology,
  version: Version,
};
