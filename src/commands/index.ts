// Every command, listed explicitly so that start-up imports this small index and nothing else.
import Agent from './agent.js';
import Autocomplete from './autocomplete.js';
import DemoteCluster from './demote-cluster.js';
import Dsn from './dsn.js';
import EditConfig from './edit-config.js';
import Failover from './failover.js';
import Flush from './flush.js';
import History from './history.js';
import List from './list.js';
import Pause from './pause.js';
import PromoteCluster from './promote-cluster.js';
import Query from './query.js';
import Reinit from './reinit.js';
import Reload from './reload.js';
import Remove from './remove.js';
import Restart from './restart.js';
import Resume from './resume.js';
import ShowConfig from './show-config.js';
import Switchover from './switchover.js';
import Topology from './topology.js';
import Version from './version.js';

export const COMMANDS = {
  agent: Agent,
  autocomplete: Autocomplete,
  'demote-cluster': DemoteCluster,
  dsn: Dsn,
  'edit-config': EditConfig,
  failover: Failover,
  flush: Flush,
  history: History,
  list: List,
  pause: Pause,
  'promote-cluster': PromoteCluster,
  query: Query,
  reinit: Reinit,
  reload: Reload,
  remove: Remove,
  restart: Restart,
  resume: Resume,
  'show-config': ShowConfig,
  switchover: Switchover,
  topology: Topology,
  version: Version,
};
