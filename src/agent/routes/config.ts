/** PATCH /config and PUT /config (api.py `do_PATCH_config`, `do_PUT_config`): the DCS `config` key, CAS-guarded. */
import type { ApiRequest, UnsafeHandlers } from '../../api/types.js';
import type { Cluster } from '../../model/cluster.js';
import { pyJson } from '../../model/pyjson.js';
import type { EndpointDeps } from '../endpoints.js';
import { deepCompare, deepCopy, freshCluster, patchConfig, type Reply } from './parse.js';

export function configEndpoints(
  deps: EndpointDeps,
): Required<Pick<UnsafeHandlers, 'patchConfig' | 'putConfig'>> {
  const { dcs, loop } = deps;
  const patchConfigHandler = async (req: ApiRequest): Reply => {
    let c: Cluster;
    try {
      c = await dcs.getCluster();
    } catch {
      return { error: 503 };
    }
    const cfg = c.config;
    if (!cfg || !cfg.modifyVersion || !cfg.valid) return { error: 503 };
    const data = deepCopy(cfg.data);
    if (patchConfig(data, req.body)) {
      let ok = false;
      try {
        ok = await dcs.setConfigValue(pyJson(data, true), cfg.version);
      } catch {
        ok = false;
      }
      if (!ok) return { error: 409 };
    }
    loop.wake();
    return { code: 200, json: data };
  };

  const putConfigHandler = async (req: ApiRequest): Reply => {
    const c = await freshCluster(deps);
    if (!deepCompare(req.body, c?.config?.data ?? {})) {
      let ok = false;
      try {
        ok = await dcs.setConfigValue(pyJson(req.body, true));
      } catch {
        ok = false;
      }
      if (!ok) return { error: 502 };
    }
    return { code: 200, json: req.body };
  };
  return { patchConfig: patchConfigHandler, putConfig: putConfigHandler };
}
