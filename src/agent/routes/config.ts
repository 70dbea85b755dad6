/** PATCH /config and PUT /config (api.py `do_PATCH_config`, `do_PUT_config`): the DCS `config` key, CAS-guarded. */
import type { ApiReply, ApiRequest, UnsafeHandlers } from '../../api/types.js';
import { assertDynamicConfigChange } from '../../config/config-check.js';
import { UserError } from '../../config/errors.js';
import type { Cluster, JsonObject } from '../../model/cluster.js';
import { pyJson } from '../../model/pyjson.js';
import type { EndpointDeps } from './deps.js';
import { deepCompare, patchConfig } from '../../model/python.js';
import { deepCopy, freshCluster, text, type Reply } from './parse.js';

/** A setting pgwarden does not implement is refused before anything is written (src/config/key-registry.ts). */
function refusal(before: JsonObject, after: JsonObject): ApiReply | undefined {
  try {
    assertDynamicConfigChange(before, after);
    return undefined;
  } catch (e) {
    if (e instanceof UserError) return text(400, e.message);
    throw e;
  }
}

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
      const refused = refusal(cfg.data, data);
      if (refused !== undefined) return refused;
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
      const refused = refusal(c?.config?.data ?? {}, req.body);
      if (refused !== undefined) return refused;
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
